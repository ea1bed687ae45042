// Exact latency percentiles from every recorded sample (no bucketing, so p99 and max are what happened).
#pragma once

#include <cstdint>
#include <vector>

namespace easedge::bench {

struct LatencySummary {
  double p50_ms = 0;
  double p90_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

// Nearest-rank percentiles of samples in microseconds; reorders `samples_us`. Empty input gives zeros.
LatencySummary summarize_latency(std::vector<std::uint32_t>& samples_us);

// Nearest-rank index of percentile p (0 < p <= 1) among n sorted samples (n > 0).
std::size_t nearest_rank_index(double p, std::size_t n);

}  // namespace easedge::bench
