// Counts a repeated event (a failed accept, a refused connection) so it is logged once per interval, with a count.
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>

namespace easedge::proxy {

// Not thread-safe: each I/O thread keeps its own.
class EventTally {
public:
  using Clock = std::chrono::steady_clock;

  explicit EventTally(Clock::duration interval) : interval_(interval) {}

  // Counts one event at `now`. When a report is due (the first event, then at most one per interval) returns the
  // events since the last report, this one included, and starts counting again; otherwise returns 0.
  std::uint64_t add(Clock::time_point now) {
    ++pending_;
    if (reported_ && now - last_report_ < interval_) return 0;
    reported_ = true;
    last_report_ = now;
    return std::exchange(pending_, 0);
  }

private:
  Clock::duration interval_;
  Clock::time_point last_report_{};
  bool reported_ = false;
  std::uint64_t pending_ = 0;
};

}  // namespace easedge::proxy
