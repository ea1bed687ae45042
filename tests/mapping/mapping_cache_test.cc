// The mapping cache: lifetimes per answer kind, size bound, and what is never kept.
#include "mapping/mapping_cache.h"

#include <gtest/gtest.h>

namespace easedge::mapping {
namespace {

using namespace std::chrono_literals;

MapResult answer(MapStatus status) { return {status, std::nullopt, "upn", false, ""}; }

config::MappingCacheConfig config_of(std::chrono::seconds ttl, std::chrono::seconds negative, std::size_t max) {
  config::MappingCacheConfig c;
  c.ttl = ttl;
  c.negative_ttl = negative;
  c.max_entries = max;
  return c;
}

TEST(MappingCache, PositiveAndNegativeAnswersLiveForTheirOwnTtl) {
  MappingCache cache(config_of(300s, 30s, 10));
  auto t0 = MappingCache::Clock::now();
  cache.store("mapped", answer(MapStatus::mapped), t0);
  cache.store("refused", answer(MapStatus::not_mapped), t0);
  EXPECT_TRUE(cache.find("mapped", t0 + 299s));
  EXPECT_TRUE(cache.find("refused", t0 + 29s));
  EXPECT_FALSE(cache.find("refused", t0 + 30s));
  EXPECT_FALSE(cache.find("mapped", t0 + 300s));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(MappingCache, DirectoryUnavailableIsNeverKept) {
  MappingCache cache(config_of(300s, 30s, 10));
  auto t0 = MappingCache::Clock::now();
  cache.store("k", answer(MapStatus::directory_unavailable), t0);
  EXPECT_FALSE(cache.find("k", t0));
}

TEST(MappingCache, ZeroTtlDisablesThatKind) {
  MappingCache cache(config_of(300s, 0s, 10));
  auto t0 = MappingCache::Clock::now();
  cache.store("refused", answer(MapStatus::not_mapped), t0);
  EXPECT_FALSE(cache.find("refused", t0));
}

TEST(MappingCache, EvictsTheLeastRecentlyUsed) {
  MappingCache cache(config_of(300s, 30s, 2));
  auto t0 = MappingCache::Clock::now();
  cache.store("a", answer(MapStatus::mapped), t0);
  cache.store("b", answer(MapStatus::mapped), t0);
  EXPECT_TRUE(cache.find("a", t0));  // a is now the most recent
  cache.store("c", answer(MapStatus::mapped), t0);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_TRUE(cache.find("a", t0));
  EXPECT_FALSE(cache.find("b", t0));
  EXPECT_TRUE(cache.find("c", t0));
}

TEST(MappingCache, StoringAgainReplaces) {
  MappingCache cache(config_of(300s, 30s, 2));
  auto t0 = MappingCache::Clock::now();
  cache.store("a", answer(MapStatus::not_mapped), t0);
  cache.store("a", answer(MapStatus::mapped), t0);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.find("a", t0)->status, MapStatus::mapped);
}

}  // namespace
}  // namespace easedge::mapping
