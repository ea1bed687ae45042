// Per-thread lookup of the request metrics' label sets.
#include "proxy/thread_metrics.h"

#include <string>
#include <string_view>

namespace easedge::proxy {

namespace {
std::string_view command_label(std::optional<eas::Command> command) {
  return command ? eas::command_name(*command) : std::string_view("none");
}
}  // namespace

Counter& ThreadMetrics::requests(std::uint16_t status, std::optional<eas::Command> command) {
  auto& counter = requests_[std::uint32_t{status} << 16 | command_key(command)];
  if (!counter) counter = &metrics_.requests.with({std::to_string(status), command_label(command)});
  return *counter;
}

Histogram& ThreadMetrics::upstream_latency(std::optional<eas::Command> command) {
  auto& histogram = upstream_latency_[command_key(command)];
  if (!histogram) histogram = &metrics_.upstream_latency.with({command_label(command)});
  return *histogram;
}

}  // namespace easedge::proxy
