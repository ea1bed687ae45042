// The mapping statistics recorder: bucket boundaries (Prometheus `le`), cumulative snapshots, the sum,
// and concurrent recording.
#include "mapping/mapping_stats.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace easedge::mapping {
namespace {

using namespace std::chrono_literals;

TEST(MappingStatsTest, StartsAtZero) {
  MappingStatsRecorder recorder;
  auto stats = recorder.snapshot();
  EXPECT_EQ(stats.cache_hits, 0u);
  EXPECT_EQ(stats.cache_misses, 0u);
  EXPECT_EQ(stats.directory_requests, 0u);
  EXPECT_EQ(stats.directory_seconds_sum, 0.0);
  for (auto count : stats.directory_seconds_le) EXPECT_EQ(count, 0u);
}

TEST(MappingStatsTest, CountsCacheHitsAndMisses) {
  MappingStatsRecorder recorder;
  recorder.cache_hit();
  recorder.cache_hit();
  recorder.cache_miss();
  auto stats = recorder.snapshot();
  EXPECT_EQ(stats.cache_hits, 2u);
  EXPECT_EQ(stats.cache_misses, 1u);
}

TEST(MappingStatsTest, BucketsAreCumulativeAndABoundIsInclusive) {
  MappingStatsRecorder recorder;
  recorder.directory_request(0ns);       // le 0.001
  recorder.directory_request(1ms);       // exactly the first bound: le 0.001
  recorder.directory_request(1001us);    // le 0.0025
  recorder.directory_request(30ms);      // le 0.05
  recorder.directory_request(5s);        // exactly the last bound
  recorder.directory_request(6s);        // only +Inf
  auto stats = recorder.snapshot();
  const auto& bounds = MappingStats::directory_seconds_bounds;
  ASSERT_EQ(bounds.front(), 0.001);
  ASSERT_EQ(bounds.back(), 5.0);
  EXPECT_EQ(stats.directory_requests, 6u);
  EXPECT_EQ(stats.directory_seconds_le[0], 2u);   // <= 0.001
  EXPECT_EQ(stats.directory_seconds_le[1], 3u);   // <= 0.0025
  EXPECT_EQ(stats.directory_seconds_le[4], 3u);   // <= 0.025
  EXPECT_EQ(stats.directory_seconds_le[5], 4u);   // <= 0.05
  EXPECT_EQ(stats.directory_seconds_le[10], 4u);  // <= 2.5
  EXPECT_EQ(stats.directory_seconds_le[11], 5u);  // <= 5
  EXPECT_DOUBLE_EQ(stats.directory_seconds_sum, 0.001 + 0.001001 + 0.030 + 5 + 6);
}

TEST(MappingStatsTest, ConcurrentRecordingLosesNothing) {
  MappingStatsRecorder recorder;
  constexpr int threads = 4;
  constexpr int each = 10000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&recorder] {
      for (int i = 0; i < each; ++i) {
        recorder.cache_miss();
        recorder.directory_request(2ms);
        recorder.cache_hit();
      }
    });
  for (auto& worker : workers) worker.join();
  auto stats = recorder.snapshot();
  EXPECT_EQ(stats.cache_hits, std::uint64_t{threads * each});
  EXPECT_EQ(stats.cache_misses, std::uint64_t{threads * each});
  EXPECT_EQ(stats.directory_requests, std::uint64_t{threads * each});
  EXPECT_EQ(stats.directory_seconds_le[0], 0u);
  EXPECT_EQ(stats.directory_seconds_le[1], std::uint64_t{threads * each});
  EXPECT_NEAR(stats.directory_seconds_sum, threads * each * 0.002, 1e-6);
}

}  // namespace
}  // namespace easedge::mapping
