// Metric storage, Prometheus text rendering, and easedge's metric names.
#include "proxy/metrics.h"

#include "auth/revocation/revocation_checker.h"
#include "config/version.h"
#include "mapping/mapping_stats.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace easedge::proxy {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char text[64];
    auto [end, ec] = std::to_chars(text, text + sizeof text, v);
    out.append(text, end);
  }
}

// Label values may hold anything (a CA's DN, a file path): escape as the exposition format requires.
void append_labels(std::string& out, const Labels& labels) {
  if (labels.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    for (char c : value) {
      if (c == '\\') out += "\\\\";
      else if (c == '"') out += "\\\"";
      else if (c == '\n') out += "\\n";
      else out += c;
    }
    out += '"';
  }
  out += '}';
}

void append_sample(std::string& out, std::string_view name, const Labels& labels, double value) {
  out += name;
  append_labels(out, labels);
  out += ' ';
  append_number(out, value);
  out += '\n';
}

void append_header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  for (char c : help) out += c == '\n' ? ' ' : c;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

Labels zip(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  Labels labels;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) labels.emplace_back(names[i], values[i]);
  return labels;
}

void append_histogram(std::string& out, const std::string& name, Labels labels, const Histogram& h) {
  auto counts = h.bucket_counts();
  std::uint64_t cumulative = 0;
  labels.emplace_back("le", "");
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    labels.back().second.clear();
    if (i < h.bounds().size())
      append_number(labels.back().second, h.bounds()[i]);
    else
      labels.back().second = "+Inf";
    append_sample(out, name + "_bucket", labels, static_cast<double>(cumulative));
  }
  labels.pop_back();
  append_sample(out, name + "_sum", labels, h.sum());
  append_sample(out, name + "_count", labels, static_cast<double>(cumulative));
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      lines_per_shard_((bounds_.size() + words_per_line) / words_per_line),  // bounds + 1 buckets
      counts_(lines_per_shard_ * count_shards) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::observe(double v) {
  std::size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();  // le: v <= bound
  auto shard = this_thread_shard();
  counts_[shard * lines_per_shard_ + bucket / words_per_line].words[bucket % words_per_line].fetch_add(
      1, std::memory_order_relaxed);
  sums_[shard].value.fetch_add(v, std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::bucket_counts() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  for (std::size_t shard = 0; shard < count_shards; ++shard)
    for (std::size_t bucket = 0; bucket < out.size(); ++bucket)
      out[bucket] += counts_[shard * lines_per_shard_ + bucket / words_per_line]
                         .words[bucket % words_per_line]
                         .load(std::memory_order_relaxed);
  return out;
}

double Histogram::sum() const {
  double total = 0;
  for (const auto& sum : sums_) total += sum.value.load(std::memory_order_relaxed);
  return total;
}

template <typename Metric>
Metric& Family<Metric>::with(std::initializer_list<std::string_view> values) {
  std::lock_guard lock(mutex_);
  auto it = members_.find(values);
  if (it == members_.end())
    it = members_.emplace(std::vector<std::string>(values.begin(), values.end()), make_()).first;
  return *it->second;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

void SampleWriter::header(std::string_view name, std::string_view help, std::string_view type) {
  append_header(out_, name, help, type);
}

void SampleWriter::sample(std::string_view name, const Labels& labels, double value) {
  append_sample(out_, name, labels, value);
}

MetricsRegistry::Entry& MetricsRegistry::add(std::string name, std::string help) {
  return entries_.emplace_back(Entry{std::move(name), std::move(help), {}});
}

Counter& MetricsRegistry::counter(std::string name, std::string help) {
  std::lock_guard lock(mutex_);
  auto& c = counters_.emplace_back();
  add(std::move(name), std::move(help)).render = [&c](const Entry& e, std::string& out) {
    append_header(out, e.name, e.help, "counter");
    append_sample(out, e.name, {}, static_cast<double>(c.value()));
  };
  return c;
}

Gauge& MetricsRegistry::gauge(std::string name, std::string help) {
  std::lock_guard lock(mutex_);
  auto& g = gauges_.emplace_back();
  add(std::move(name), std::move(help)).render = [&g](const Entry& e, std::string& out) {
    append_header(out, e.name, e.help, "gauge");
    append_sample(out, e.name, {}, g.value());
  };
  return g;
}

Histogram& MetricsRegistry::histogram(std::string name, std::string help, std::vector<double> bounds) {
  std::lock_guard lock(mutex_);
  auto& h = histograms_.emplace_back(std::move(bounds));
  add(std::move(name), std::move(help)).render = [&h](const Entry& e, std::string& out) {
    append_header(out, e.name, e.help, "histogram");
    append_histogram(out, e.name, {}, h);
  };
  return h;
}

CounterFamily& MetricsRegistry::counter_family(std::string name, std::string help,
                                               std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  auto& f = *counter_families_.emplace_back(
      std::make_unique<CounterFamily>(std::move(label_names), [] { return std::make_unique<Counter>(); }));
  add(std::move(name), std::move(help)).render = [&f](const Entry& e, std::string& out) {
    append_header(out, e.name, e.help, "counter");
    f.for_each([&](const std::vector<std::string>& values, const Counter& c) {
      append_sample(out, e.name, zip(f.label_names(), values), static_cast<double>(c.value()));
    });
  };
  return f;
}

GaugeFamily& MetricsRegistry::gauge_family(std::string name, std::string help, std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  auto& f = *gauge_families_.emplace_back(
      std::make_unique<GaugeFamily>(std::move(label_names), [] { return std::make_unique<Gauge>(); }));
  add(std::move(name), std::move(help)).render = [&f](const Entry& e, std::string& out) {
    append_header(out, e.name, e.help, "gauge");
    f.for_each([&](const std::vector<std::string>& values, const Gauge& g) {
      append_sample(out, e.name, zip(f.label_names(), values), g.value());
    });
  };
  return f;
}

HistogramFamily& MetricsRegistry::histogram_family(std::string name, std::string help,
                                                   std::vector<std::string> label_names, std::vector<double> bounds) {
  std::lock_guard lock(mutex_);
  auto& f = *histogram_families_.emplace_back(std::make_unique<HistogramFamily>(
      std::move(label_names), [bounds] { return std::make_unique<Histogram>(bounds); }));
  add(std::move(name), std::move(help)).render = [&f](const Entry& e, std::string& out) {
    append_header(out, e.name, e.help, "histogram");
    f.for_each([&](const std::vector<std::string>& values, const Histogram& h) {
      append_histogram(out, e.name, zip(f.label_names(), values), h);
    });
  };
  return f;
}

void MetricsRegistry::add_collector(std::function<void(SampleWriter&)> collect) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(collect));
}

std::string MetricsRegistry::render() const {
  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& e : entries_) e.render(e, out);
  SampleWriter writer(out);
  for (const auto& collect : collectors_) collect(writer);
  return out;
}

std::vector<double> latency_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600};
}


EasedgeMetrics::EasedgeMetrics(MetricsRegistry& r)
    : registry(r),
      requests(r.counter_family("easedge_requests_total",
                                "Requests answered, by HTTP status and ActiveSync command (Cmd= of the query).",
                                {"status", "command"})),
      handshakes(r.counter_family("easedge_tls_handshakes_total", "TLS handshakes with devices, by result.",
                                  {"result"})),
      full_handshakes(r.counter("easedge_tls_full_handshakes_total",
                                "Successful TLS handshakes with devices that were full handshakes.")),
      resumed_handshakes(r.counter("easedge_tls_resumed_handshakes_total",
                                   "Successful TLS handshakes with devices that resumed a session (ticket).")),
      refusals(r.counter_family("easedge_refusals_total",
                                "Requests refused by easedge itself (403.x, 413, 400, ...), by refusal reason.",
                                {"reason"})),
      upstream_latency(r.histogram_family("easedge_upstream_response_seconds",
                                          "Time from sending a request to Exchange to its response headers.",
                                          {"command"}, latency_buckets())),
      upstream_errors(r.counter("easedge_upstream_errors_total",
                                "Requests answered 502/504 because Exchange was unreachable or too slow.")),
      connections_open(r.gauge("easedge_connections_open", "Device connections currently open.")),
      requests_held(r.gauge("easedge_requests_held",
                            "Requests currently waiting for Exchange's answer (held Ping/Sync included).")),
      reloads(r.counter("easedge_config_reloads_total", "Configuration reloads (SIGHUP) that took effect.")),
      reload_failures(r.counter("easedge_config_reload_failures_total",
                                "Configuration reloads refused (the previous configuration kept serving).")) {
  r.gauge_family("easedge_build_info", "easedge build; the value is always 1.", {"version"})
      .with({version_string})
      .set(1);
}

void EasedgeMetrics::watch_revocation(std::function<std::shared_ptr<const auth::RevocationChecker>()> current) {
  registry.add_collector([current = std::move(current)](SampleWriter& out) {
    auto checker = current();
    if (!checker) return;
    const auto now = std::chrono::system_clock::now();
    auto infos = checker->loaded();
    out.header("easedge_crl_next_update_seconds",
               "Seconds until the CRL's nextUpdate (negative: past it; the CRL counts as unavailable after "
               "tls.revocation.crl_grace_seconds).",
               "gauge");
    for (const auto& info : infos) {
      if (!info.next_update) continue;
      auto left = std::chrono::duration<double>(*info.next_update - now).count();
      out.sample("easedge_crl_next_update_seconds",
                 {{"issuer", info.issuer}, {"source", info.source}, {"delta", info.delta ? "true" : "false"}}, left);
    }
    out.header("easedge_crl_entries", "Revoked serials listed by the CRL.", "gauge");
    for (const auto& info : infos)
      out.sample("easedge_crl_entries",
                 {{"issuer", info.issuer}, {"source", info.source}, {"delta", info.delta ? "true" : "false"}},
                 static_cast<double>(info.entries));

    const auto stats = checker->stats();
    auto counter = [&out](const char* name, const char* help, std::uint64_t value) {
      out.header(name, help, "counter");
      out.sample(name, {}, static_cast<double>(value));
    };
    counter("easedge_crl_loads_total", "CRLs (files or downloads) accepted into the revocation data.", stats.crl_loads);
    counter("easedge_crl_load_failures_total",
            "CRLs rejected (garbage, bad signature, too large, unreadable); the last good one kept serving.",
            stats.crl_load_failures);
    counter("easedge_crl_fetches_total", "CRL downloads from CRL Distribution Points.", stats.crl_fetches);
    counter("easedge_crl_fetch_failures_total", "CRL downloads that failed (network, HTTP status, size, time).",
            stats.crl_fetch_failures);
    counter("easedge_ocsp_requests_total", "OCSP queries sent.", stats.ocsp_requests);
    counter("easedge_ocsp_failures_total", "OCSP queries without a usable answer (down, invalid, untrusted).",
            stats.ocsp_failures);
    counter("easedge_ocsp_cache_hits_total", "Revocation checks answered from the OCSP cache.", stats.ocsp_cache_hits);
    counter("easedge_ocsp_cache_misses_total", "Revocation checks that found no current OCSP answer.",
            stats.ocsp_cache_misses);
    out.header("easedge_revocation_generation", "Changes whenever the revocation data changes.", "gauge");
    out.sample("easedge_revocation_generation", {}, static_cast<double>(checker->generation()));
  });
}

void EasedgeMetrics::watch_mapping(std::function<mapping::MappingStats()> current) {
  registry.add_collector([current = std::move(current)](SampleWriter& out) {
    const auto stats = current();
    out.header("easedge_mapping_cache_hits_total", "Certificate-to-account mappings answered from the cache.",
               "counter");
    out.sample("easedge_mapping_cache_hits_total", {}, static_cast<double>(stats.cache_hits));
    out.header("easedge_mapping_cache_misses_total", "Certificate-to-account mappings that needed the directory.",
               "counter");
    out.sample("easedge_mapping_cache_misses_total", {}, static_cast<double>(stats.cache_misses));
    out.header("easedge_directory_request_seconds", "Duration of one directory (LDIF or LDAP) request.", "histogram");
    for (std::size_t i = 0; i < stats.directory_seconds_le.size(); ++i) {
      char le[32];
      auto end = std::to_chars(le, le + sizeof le, mapping::MappingStats::directory_seconds_bounds[i]).ptr;
      out.sample("easedge_directory_request_seconds_bucket", {{"le", std::string(le, end)}},
                 static_cast<double>(stats.directory_seconds_le[i]));
    }
    out.sample("easedge_directory_request_seconds_bucket", {{"le", "+Inf"}},
               static_cast<double>(stats.directory_requests));
    out.sample("easedge_directory_request_seconds_sum", {}, stats.directory_seconds_sum);
    out.sample("easedge_directory_request_seconds_count", {}, static_cast<double>(stats.directory_requests));
  });
}

}  // namespace easedge::proxy
