#include "mapping/mapping_stats.h"

#include <algorithm>

namespace easedge::mapping {

void MappingStatsRecorder::directory_request(std::chrono::steady_clock::duration took) {
  const auto& bounds = MappingStats::directory_seconds_bounds;
  double seconds = std::chrono::duration<double>(took).count();
  // Prometheus `le`: a request of exactly a bound's duration belongs to that bound's bucket.
  auto bucket = static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin());
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  // steady_clock durations are never negative.
  auto nanoseconds = std::chrono::duration_cast<std::chrono::nanoseconds>(took).count();
  directory_nanoseconds_.fetch_add(static_cast<std::uint64_t>(nanoseconds), std::memory_order_relaxed);
}

MappingStats MappingStatsRecorder::snapshot() const {
  MappingStats stats;
  stats.cache_hits = cache_hits_.load(std::memory_order_relaxed);
  stats.cache_misses = cache_misses_.load(std::memory_order_relaxed);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    if (i < stats.directory_seconds_le.size()) stats.directory_seconds_le[i] = cumulative;
  }
  stats.directory_requests = cumulative;
  stats.directory_seconds_sum =
      static_cast<double>(directory_nanoseconds_.load(std::memory_order_relaxed)) / 1e9;
  return stats;
}

}  // namespace easedge::mapping
