// coarse_clock.h: steady_clock as of the kernel's last tick, for deadlines and ages counted in seconds.
#pragma once

#include <time.h>

#include <chrono>

namespace easedge::proxy {

// CLOCK_MONOTONIC_COARSE is CLOCK_MONOTONIC (steady_clock's clock on Linux) as it stood at the last timer tick,
// 1-10 ms behind. A keep-alive request reads the clock a dozen times (each phase's deadline, the upstream pool's
// ages); on a virtual machine an exact read costs ~25 ns and this one ~4. Never ahead of steady_clock::now(), so a
// deadline set from it is at most one tick early. Latencies (the access log, the upstream histogram) stay exact.
inline std::chrono::steady_clock::time_point coarse_now() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return std::chrono::steady_clock::time_point(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec)));
}

}  // namespace easedge::proxy
