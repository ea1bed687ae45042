// Counters of the mapper's cache and directory use (cache hits and misses, directory request durations),
// read by the proxy's /metrics at scrape time.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace easedge::mapping {

// A snapshot; counters grow for the life of one mapper (a configuration reload makes a new one).
struct MappingStats {
  // Upper bounds, in seconds, of the directory request duration buckets (Prometheus `le` values): an LDIF
  // lookup lands in the first, a LAN domain controller in the low milliseconds, a struggling one near the
  // LDAP timeout.
  static constexpr std::array<double, 12> directory_seconds_bounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                   0.1,   0.25,   0.5,   1,    2.5,   5};

  std::uint64_t cache_hits = 0;    // answered from the mapping cache
  std::uint64_t cache_misses = 0;  // needed the directory (concurrent misses for one certificate each count)
  // Directory requests (a search per certificate, a group check per mapped account with require_group),
  // answered or failed.
  std::uint64_t directory_requests = 0;
  // directory_seconds_le[i]: requests that took at most directory_seconds_bounds[i] (cumulative, as a
  // Prometheus histogram's buckets; the +Inf bucket is directory_requests).
  std::array<std::uint64_t, directory_seconds_bounds.size()> directory_seconds_le{};
  double directory_seconds_sum = 0;
};

// Thread-safe and lock-free: relaxed atomics, so recording costs the mapper next to nothing.
class MappingStatsRecorder {
public:
  void cache_hit() { cache_hits_.fetch_add(1, std::memory_order_relaxed); }
  void cache_miss() { cache_misses_.fetch_add(1, std::memory_order_relaxed); }
  void directory_request(std::chrono::steady_clock::duration took);

  // Buckets, +Inf and count are consistent with each other; the sum may lag a request in flight.
  MappingStats snapshot() const;

private:
  std::atomic<std::uint64_t> cache_hits_{0};
  std::atomic<std::uint64_t> cache_misses_{0};
  // Per bucket, not cumulative; the last one holds requests slower than the largest bound.
  std::array<std::atomic<std::uint64_t>, MappingStats::directory_seconds_bounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> directory_nanoseconds_{0};
};

}  // namespace easedge::mapping
