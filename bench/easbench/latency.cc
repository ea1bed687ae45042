#include "bench/easbench/latency.h"

#include <algorithm>
#include <cmath>

namespace easedge::bench {

std::size_t nearest_rank_index(double p, std::size_t n) {
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(n)));
  return std::clamp<std::size_t>(rank, 1, n) - 1;
}

LatencySummary summarize_latency(std::vector<std::uint32_t>& samples_us) {
  LatencySummary s;
  if (samples_us.empty()) return s;
  auto at = [&](double p) {
    auto it = samples_us.begin() + static_cast<std::ptrdiff_t>(nearest_rank_index(p, samples_us.size()));
    std::nth_element(samples_us.begin(), it, samples_us.end());
    return *it / 1000.0;
  };
  s.p50_ms = at(0.50);
  s.p90_ms = at(0.90);
  s.p99_ms = at(0.99);
  s.max_ms = *std::max_element(samples_us.begin(), samples_us.end()) / 1000.0;
  return s;
}

}  // namespace easedge::bench
