// The operator console's JSON documents (/api/...), built from state the proxy already tracks.
#pragma once

#include "proxy/admin_server.h"
#include "proxy/console/console_log.h"
#include "proxy/metrics.h"
#include "proxy/runtime.h"

#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace easedge::proxy::console {

// Where the console reads the proxy's state. Every call is cheap and never blocks (no network).
struct ConsoleSources {
  const EasedgeMetrics* metrics = nullptr;
  const ConsoleLog* log = nullptr;
  std::function<std::shared_ptr<const Runtime>()> runtime;
  std::function<std::vector<ReadinessCheck>()> readiness;
};

using Clock = std::chrono::system_clock;

// JSON text that is also safe wherever a browser might parse it as markup: '<', '>', '&' and U+2028/2029
// become \u escapes (the same JSON value, no tag can open or close).
std::string serialize_for_browser(const boost::json::value& value);

// /api/overview: counters the page turns into rates, gauges, refusals by class (totals and per minute).
// `resumed` counts the handshakes that resumed a TLS session under the current configuration.
boost::json::value overview_json(const EasedgeMetrics& metrics, const ConsoleLog& log, Clock::time_point now,
                                 std::uint64_t resumed);
// /api/refusals: the ring, newest first.
boost::json::value refusals_json(const std::vector<RefusalEntry>& refusals);
// /api/activity: the most active devices and users.
boost::json::value activity_json(const ConsoleLog& log, std::size_t limit);
// /api/revocation: CRLs, sources and OCSP responders, the on_unavailable policy.
boost::json::value revocation_json(const Runtime& runtime, Clock::time_point now);
// /api/directory: directory, Kerberos and upstream servers.
boost::json::value directory_json(const Runtime& runtime, const EasedgeMetrics& metrics,
                                  const std::vector<ReadinessCheck>& readiness);

}  // namespace easedge::proxy::console
