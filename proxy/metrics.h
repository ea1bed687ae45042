// Prometheus metrics: a lock-cheap registry of counters, gauges and histograms, and easedge's own metric set.
//
// Hot paths hold references to pre-registered metrics (Counter&, Gauge&, Histogram&) and update them with
// relaxed atomics, counters and histograms in the updating I/O thread's own shard: no lookup, no lock, no
// allocation, no cache line shared with another I/O thread. Labelled families are resolved once, at set-up or
// on a rare path; `with()` takes a mutex. Values computed at scrape time come from collectors.
#pragma once

#include "proxy/sharded_count.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace easedge::auth {
class RevocationChecker;
}
namespace easedge::mapping {
struct MappingStats;
}

namespace easedge::proxy {

// Sharded per I/O thread (proxy/sharded_count.h): requests update counters on every thread.
class Counter {
public:
  void inc(std::uint64_t n = 1) { value_.add(n); }
  std::uint64_t value() const { return value_.sum(); }

private:
  ShardedCount value_;
};

class Gauge {
public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  void inc() { add(1); }
  void dec() { add(-1); }
  double value() const { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<double> value_{0};
};

// Fixed upper bounds (seconds or any unit), cumulative buckets rendered the Prometheus way. Sharded per I/O
// thread like Counter: each shard's buckets and sum are cache lines of their own.
class Histogram {
public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  std::vector<std::uint64_t> bucket_counts() const;  // per bucket (not cumulative); last is +Inf
  double sum() const;

private:
  static constexpr std::size_t words_per_line = cache_line_bytes / sizeof(std::atomic<std::uint64_t>);
  struct alignas(cache_line_bytes) Line {
    std::array<std::atomic<std::uint64_t>, words_per_line> words{};
  };
  struct alignas(cache_line_bytes) Sum {
    std::atomic<double> value{0};
  };
  std::vector<double> bounds_;
  std::size_t lines_per_shard_;
  std::vector<Line> counts_;  // shard s, bucket b: counts_[s * lines_per_shard_ + b / words_per_line]
  std::array<Sum, count_shards> sums_;
};

// Metrics of one name that differ by label values. Members live as long as the family (stable references).
template <typename Metric>
class Family {
public:
  Family(std::vector<std::string> label_names, std::function<std::unique_ptr<Metric>()> make)
      : label_names_(std::move(label_names)), make_(std::move(make)) {}

  // The member for these label values (in label_names order), created on first use. Takes a short lock and
  // allocates only on first use; hot paths should still keep the reference.
  Metric& with(std::initializer_list<std::string_view> values);

  const std::vector<std::string>& label_names() const { return label_names_; }
  // Calls `f(values, metric)` for each member, in label order.
  template <typename F>
  void for_each(F f) const {
    std::lock_guard lock(mutex_);
    for (const auto& [values, metric] : members_) f(values, *metric);
  }

private:
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<Metric>()> make_;
  mutable std::mutex mutex_;
  // Orders label-value lists, also against a list of string_views (lookup without allocating).
  struct LabelsLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                          [](std::string_view x, std::string_view y) { return x < y; });
    }
  };
  std::map<std::vector<std::string>, std::unique_ptr<Metric>, LabelsLess> members_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// Writes scrape-time samples from a collector.
class SampleWriter {
public:
  explicit SampleWriter(std::string& out) : out_(out) {}
  // Starts a metric: HELP and TYPE lines ("counter" | "gauge"). Call once per name, then sample() per series.
  void header(std::string_view name, std::string_view help, std::string_view type);
  void sample(std::string_view name, const std::vector<std::pair<std::string, std::string>>& labels, double value);

private:
  std::string& out_;
};

class MetricsRegistry {
public:
  Counter& counter(std::string name, std::string help);
  Gauge& gauge(std::string name, std::string help);
  Histogram& histogram(std::string name, std::string help, std::vector<double> bounds);
  CounterFamily& counter_family(std::string name, std::string help, std::vector<std::string> label_names);
  GaugeFamily& gauge_family(std::string name, std::string help, std::vector<std::string> label_names);
  HistogramFamily& histogram_family(std::string name, std::string help, std::vector<std::string> label_names,
                                    std::vector<double> bounds);

  // Runs at every scrape, on the scraping thread: must be cheap and must not block.
  void add_collector(std::function<void(SampleWriter&)> collect);

  // Prometheus text exposition format 0.0.4.
  std::string render() const;

private:
  struct Entry {
    std::string name;
    std::string help;
    std::function<void(const Entry&, std::string&)> render;
  };
  Entry& add(std::string name, std::string help);

  mutable std::mutex mutex_;  // registration and scraping; never taken by updates
  std::deque<Entry> entries_;
  std::deque<Counter> counters_;
  std::deque<Gauge> gauges_;
  std::deque<Histogram> histograms_;
  std::deque<std::unique_ptr<CounterFamily>> counter_families_;
  std::deque<std::unique_ptr<GaugeFamily>> gauge_families_;
  std::deque<std::unique_ptr<HistogramFamily>> histogram_families_;
  std::vector<std::function<void(SampleWriter&)>> collectors_;
};

// Seconds buckets for upstream latency: fast answers up to held Pings (Exchange holds them up to an hour).
std::vector<double> latency_buckets();
// Seconds buckets for directory (LDAP) lookups.

// easedge's metric set, registered once per process; the fields are the hot-path handles.
struct EasedgeMetrics {
  explicit EasedgeMetrics(MetricsRegistry& registry);

  MetricsRegistry& registry;
  CounterFamily& requests;           // easedge_requests_total{status,command}
  CounterFamily& handshakes;         // easedge_tls_handshakes_total{result}: ok | failed | timeout
  Counter& full_handshakes;          // easedge_tls_full_handshakes_total: ok handshakes with a certificate exchange
  Counter& resumed_handshakes;       // easedge_tls_resumed_handshakes_total: ok handshakes resuming a ticket
  CounterFamily& refusals;           // easedge_refusals_total{reason}: refusal names (proxy/refusal.h)
  HistogramFamily& upstream_latency; // easedge_upstream_response_seconds{command}
  Counter& upstream_errors;          // easedge_upstream_errors_total (502/504 answers)
  Gauge& connections_open;           // easedge_connections_open
  Gauge& requests_held;              // easedge_requests_held: requests waiting for Exchange (Ping/Sync holds)
  Counter& reloads;                  // easedge_config_reloads_total
  Counter& reload_failures;          // easedge_config_reload_failures_total

  // Exposes the revocation data of the checker `current()` returns at each scrape (it changes on SIGHUP):
  // CRL nextUpdate seconds and entries per CRL, CRL load/fetch and OCSP counters, the data generation.
  void watch_revocation(std::function<std::shared_ptr<const auth::RevocationChecker>()> current);
  // Exposes the mapping cache and directory figures `current()` returns at each scrape (those of the current
  // runtime's mapper; zeros without a mapping section).
  void watch_mapping(std::function<mapping::MappingStats()> current);
};

}  // namespace easedge::proxy
