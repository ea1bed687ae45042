// The labelled metrics an I/O thread updates for every request, each label set resolved once and kept.
#pragma once

#include "eas/command.h"
#include "proxy/metrics.h"

#include <cstdint>
#include <optional>
#include <unordered_map>

namespace easedge::proxy {

// Family::with() takes the family's lock, which every thread would take for every request, and the status
// label is a string to build; this looks a label set up in the thread's own table instead and goes to the
// family only the first time. The metrics themselves stay the process's (their updates are relaxed atomics).
class ThreadMetrics {
public:
  explicit ThreadMetrics(EasedgeMetrics& metrics) : metrics_(metrics) {}
  ThreadMetrics(const ThreadMetrics&) = delete;
  ThreadMetrics& operator=(const ThreadMetrics&) = delete;

  // easedge_requests_total{status, command}
  Counter& requests(std::uint16_t status, std::optional<eas::Command> command);
  // easedge_upstream_response_seconds{command}
  Histogram& upstream_latency(std::optional<eas::Command> command);

private:
  // A command's key; one past the largest for requests without one.
  static std::uint32_t command_key(std::optional<eas::Command> command) {
    return command ? static_cast<std::uint32_t>(*command) : 0x100;
  }

  EasedgeMetrics& metrics_;
  std::unordered_map<std::uint32_t, Counter*> requests_;  // status << 16 | command_key
  std::unordered_map<std::uint32_t, Histogram*> upstream_latency_;
};

}  // namespace easedge::proxy
