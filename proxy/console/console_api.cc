// Builds the console's JSON documents from metrics, the console log and the current runtime.
#include "proxy/console/console_api.h"

#include "auth/revocation/crl.h"
#include "mapping/strong_binding.h"
#include "proxy/endpoint_text.h"
#include "proxy/refusal.h"
#include "proxy/upstream_servers.h"

#include <boost/json/serialize.hpp>

namespace easedge::proxy::console {
namespace {

namespace json = boost::json;

json::value optional_text(std::string_view text) {
  return text.empty() ? json::value(nullptr) : json::value(text);
}

std::uint64_t count_of(const CounterFamily& family, std::string_view value) {
  std::uint64_t total = 0;
  family.for_each([&](const std::vector<std::string>& values, const Counter& c) {
    if (!values.empty() && values.front() == value) total += c.value();
  });
  return total;
}

}  // namespace

std::string serialize_for_browser(const json::value& value) {
  const auto text = json::serialize(value);
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else if (c == '\xE2' && i + 2 < text.size() && text[i + 1] == '\x80' && (text[i + 2] == '\xA8' || text[i + 2] == '\xA9')) {
      out += text[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

json::value overview_json(const EasedgeMetrics& metrics, const ConsoleLog& log, Clock::time_point now,
                          std::uint64_t resumed) {
  std::uint64_t requests = 0;
  metrics.requests.for_each([&](const std::vector<std::string>&, const Counter& c) { requests += c.value(); });
  std::uint64_t upstream_responses = 0;
  double upstream_seconds = 0;
  metrics.upstream_latency.for_each([&](const std::vector<std::string>&, const Histogram& h) {
    for (auto n : h.bucket_counts()) upstream_responses += n;
    upstream_seconds += h.sum();
  });
  json::object refusals;  // totals since start, by class, from the refusal table's names
  for (std::uint8_t r = 0; r < refusal_count; ++r) {
    const auto& info = describe(static_cast<Refusal>(r));
    if (auto n = count_of(metrics.refusals, info.name)) {
      auto key = status_text(info);
      refusals[key] = (refusals.contains(key) ? refusals[key].as_int64() : 0) + static_cast<std::int64_t>(n);
    }
  }
  json::array minutes;
  for (const auto& m : log.refusals_per_minute(now)) {
    json::object classes;
    for (const auto& [cls, n] : m.by_class) classes[cls] = n;
    minutes.push_back({{"minute", auth::format_time(m.minute)}, {"classes", std::move(classes)}});
  }
  return {{"now", auth::format_time(now)},
          {"requests", requests},
          {"handshakes",
           {{"ok", count_of(metrics.handshakes, "ok")},
            {"failed", count_of(metrics.handshakes, "failed")},
            {"timeout", count_of(metrics.handshakes, "timeout")},
            {"resumed", resumed}}},
          {"connections_open", metrics.connections_open.value()},
          {"requests_held", metrics.requests_held.value()},
          {"upstream_responses", upstream_responses},
          {"upstream_seconds_sum", upstream_seconds},
          {"upstream_errors", metrics.upstream_errors.value()},
          {"refusals", std::move(refusals)},
          {"refusals_per_minute", std::move(minutes)}};
}

json::value refusals_json(const std::vector<RefusalEntry>& refusals) {
  json::array rows;
  rows.reserve(refusals.size());
  for (const auto& r : refusals)
    rows.push_back({{"time", auth::format_time(std::chrono::time_point_cast<std::chrono::seconds>(r.time))},
                    {"client", r.client_address},
                    {"subject", optional_text(r.subject)},
                    {"cert_sha256", optional_text(r.cert_sha256)},
                    {"user", optional_text(r.user)},
                    {"device_id", optional_text(r.device_id)},
                    {"device_type", optional_text(r.device_type)},
                    {"cmd", optional_text(r.command)},
                    {"status", status_class(r.status, r.substatus)},
                    {"reason", r.refusal},
                    {"detail", r.detail},
                    {"request_id", r.request_id}});
  return {{"capacity", ConsoleLog::default_ring_capacity}, {"refusals", std::move(rows)}};
}

json::value activity_json(const ConsoleLog& log, std::size_t limit) {
  auto rows = [](const std::vector<ActivityEntry>& entries, const char* detail_name) {
    json::array out;
    for (const auto& e : entries) {
      json::object row{{"key", e.key},
                       {"requests", e.requests},
                       {"refused", e.refused},
                       {"last_seen", auth::format_time(std::chrono::time_point_cast<std::chrono::seconds>(e.last_seen))}};
      if (detail_name) row[detail_name] = optional_text(e.detail);
      out.push_back(std::move(row));
    }
    return out;
  };
  return {{"devices", rows(log.top_devices(limit), "device_type")},
          {"users", rows(log.top_users(limit), nullptr)},
          {"untracked", log.untracked()}};
}

json::value revocation_json(const Runtime& runtime, Clock::time_point now) {
  const auto& config = runtime.config.tls.revocation;
  const auto& checker = *runtime.revocation;
  const auto attempts = checker.attempts();
  auto attempt_of = [&](const std::string& name) -> const auth::SourceAttempt* {
    for (const auto& a : attempts)
      if (a.name == name) return &a;
    return nullptr;
  };
  auto attempt_json = [](const auth::SourceAttempt* a) -> json::value {
    if (!a) return nullptr;
    return {{"time", auth::format_time(std::chrono::time_point_cast<std::chrono::seconds>(a->time))},
            {"ok", a->error.empty()},
            {"error", optional_text(a->error)},
            {"attempts", a->attempts},
            {"failures", a->failures}};
  };
  json::array crls;
  for (const auto& info : checker.loaded()) {
    json::object crl{{"issuer", info.issuer},
                     {"source", info.source},
                     {"delta", info.delta},
                     {"this_update", auth::format_time(info.this_update)},
                     {"next_update", info.next_update ? json::value(auth::format_time(*info.next_update)) : nullptr},
                     {"entries", info.entries},
                     {"last_attempt", attempt_json(attempt_of(info.source))}};
    if (info.next_update) {
      auto left = std::chrono::duration_cast<std::chrono::seconds>(*info.next_update - now).count();
      crl["seconds_left"] = left;
      crl["stale"] = now > *info.next_update + config.crl_grace;
    } else {
      crl["seconds_left"] = nullptr;
      crl["stale"] = false;
    }
    crls.push_back(std::move(crl));
  }
  json::array ocsp;
  json::array failing_sources;  // CRL sources that never loaded (nothing in `crls` shows them)
  for (const auto& a : attempts) {
    if (a.kind == "ocsp")
      ocsp.push_back({{"url", a.name}, {"last_attempt", attempt_json(&a)}});
    else if (!a.error.empty())
      failing_sources.push_back({{"source", a.name}, {"kind", a.kind}, {"last_attempt", attempt_json(&a)}});
  }
  const auto stats = checker.stats();
  return {{"on_unavailable", config.on_unavailable == config::RevocationFallback::allow ? "allow" : "deny"},
          {"fetch_cdp", config.fetch_cdp},
          {"ocsp_enabled", config.ocsp},
          {"crl_grace_seconds", config.crl_grace.count()},
          {"refresh_seconds", config.refresh.count()},
          {"generation", checker.generation()},
          {"crls", std::move(crls)},
          {"failing_sources", std::move(failing_sources)},
          {"ocsp_responders", std::move(ocsp)},
          {"stats",
           {{"crl_loads", stats.crl_loads},
            {"crl_load_failures", stats.crl_load_failures},
            {"crl_fetches", stats.crl_fetches},
            {"crl_fetch_failures", stats.crl_fetch_failures},
            {"ocsp_requests", stats.ocsp_requests},
            {"ocsp_failures", stats.ocsp_failures},
            {"ocsp_cache_hits", stats.ocsp_cache_hits},
            {"ocsp_cache_misses", stats.ocsp_cache_misses}}}};
}

json::value directory_json(const Runtime& runtime, const EasedgeMetrics& metrics,
                           const std::vector<ReadinessCheck>& readiness) {
  const auto unavailable = [&](Refusal r) { return count_of(metrics.refusals, describe(r).name); };
  json::value directory = nullptr;
  if (const auto& mapping = runtime.config.mapping) {
    const auto& d = mapping->directory;
    const auto stats = runtime.mapper ? runtime.mapper->stats() : mapping::MappingStats{};
    const auto lookups = stats.cache_hits + stats.cache_misses;
    directory = json::object{
        {"kind", d.ldap ? "ldap" : "ldif"},
        {"servers", json::array{json::value(d.ldap ? d.ldap->url : d.ldif->string())}},
        {"strong_binding", mapping::to_string(mapping->strong_binding)},
        {"requests", stats.directory_requests},
        {"mean_ms", stats.directory_requests ? json::value(1000 * stats.directory_seconds_sum /
                                                           static_cast<double>(stats.directory_requests))
                                             : json::value(nullptr)},
        {"cache_hits", stats.cache_hits},
        {"cache_misses", stats.cache_misses},
        {"cache_hit_rate", lookups ? json::value(static_cast<double>(stats.cache_hits) / static_cast<double>(lookups))
                                   : json::value(nullptr)},
        {"unavailable_answers", unavailable(Refusal::directory_unavailable)}};
  }
  json::value kerberos = nullptr;
  const auto& servers = *runtime.upstreams;
  if (!servers.delegators().empty() && runtime.config.upstream.kerberos) {
    auth::kerberos::DelegatorStats stats;  // summed over the delegators (one per distinct SPN)
    for (const auto& delegator : servers.delegators()) {
      const auto one = delegator->stats();
      stats.cache_hits += one.cache_hits;
      stats.kdc_exchanges += one.kdc_exchanges;
      stats.user_refused += one.user_refused;
      stats.setup_errors += one.setup_errors;
      stats.kdc_unavailable += one.kdc_unavailable;
      stats.cached_users += one.cached_users;
    }
    json::array services;
    for (std::size_t i = 0; i < servers.size(); ++i) services.push_back(json::value(servers[i].config.service));
    kerberos = json::object{{"principal", runtime.config.upstream.kerberos->principal},
                            {"services", std::move(services)},
                            {"ticket_cache_users", stats.cached_users},
                            {"cache_hits", stats.cache_hits},
                            {"kdc_exchanges", stats.kdc_exchanges},
                            {"kdc_unavailable", stats.kdc_unavailable},
                            {"user_refused", stats.user_refused},
                            {"setup_errors", stats.setup_errors},
                            {"unavailable_answers", unavailable(Refusal::kdc_unavailable)}};
  }
  // One entry per Exchange server: its addresses, passive/active health and load. With one server the
  // readiness check "upstream" says whether its last connection worked.
  std::string single_server_detail;
  bool single_server_ok = true;
  for (const auto& check : readiness)
    if (check.name == "upstream") {
      single_server_ok = check.ok;
      single_server_detail = check.detail;
    }
  json::array upstreams;
  const auto statuses = servers.snapshot(std::chrono::steady_clock::now());
  for (std::size_t i = 0; i < servers.size(); ++i) {
    json::array endpoints;
    for (const auto& e : servers[i].endpoints)
      endpoints.push_back(json::value(endpoint_text(e)));
    const auto& status = statuses[i];
    const bool single = servers.size() == 1;
    upstreams.push_back(json::object{
        {"url", status.url},
        {"endpoints", std::move(endpoints)},
        {"ok", single ? single_server_ok : status.up},
        {"detail", single ? optional_text(single_server_detail)
                          : (status.up ? json::value(nullptr)
                                       : json::value("down for " + std::to_string(status.down_for.count()) + " s"))},
        {"active_connections", status.active},
        {"requests", status.requests},
        {"failures", status.failures}});
  }
  return {{"directory", std::move(directory)},
          {"kerberos", std::move(kerberos)},
          {"upstreams", std::move(upstreams)},
          {"upstream_errors", metrics.upstream_errors.value()}};
}

}  // namespace easedge::proxy::console
