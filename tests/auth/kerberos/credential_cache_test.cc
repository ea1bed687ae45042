// The delegated-credential cache: expiry before the tickets do, a hard bound, least recently used out first.
#include "auth/kerberos/credential_cache.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace easedge::auth::kerberos {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(CredentialCacheTest, FindsWhatWasInsertedUntilItsDeadline) {
  CredentialCache<int> cache(10);
  auto t0 = Clock::now();
  EXPECT_FALSE(cache.find("alice", t0));
  cache.insert("alice", 1, t0 + 100s);
  EXPECT_EQ(cache.find("alice", t0 + 99s), 1);
  EXPECT_FALSE(cache.find("alice", t0 + 100s));
  EXPECT_EQ(cache.size(), 0u) << "an expired entry is dropped when found";
}

TEST(CredentialCacheTest, EvictsTheLeastRecentlyUsedWhenFull) {
  CredentialCache<int> cache(2);
  auto t0 = Clock::now();
  cache.insert("alice", 1, t0 + 1h);
  cache.insert("bob", 2, t0 + 1h);
  ASSERT_TRUE(cache.find("alice", t0));  // alice is now the most recently used
  cache.insert("carol", 3, t0 + 1h);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.find("bob", t0));
  EXPECT_EQ(cache.find("alice", t0), 1);
  EXPECT_EQ(cache.find("carol", t0), 3);
}

TEST(CredentialCacheTest, InsertReplacesValueAndDeadline) {
  CredentialCache<int> cache(2);
  auto t0 = Clock::now();
  cache.insert("alice", 1, t0 + 10s);
  cache.insert("alice", 2, t0 + 1h);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.find("alice", t0 + 20s), 2);
}

TEST(CredentialCacheTest, EraseForgetsOneUser) {
  CredentialCache<int> cache(4);
  auto t0 = Clock::now();
  cache.insert("alice", 1, t0 + 1h);
  cache.insert("bob", 2, t0 + 1h);
  cache.erase("alice");
  cache.erase("nobody");
  EXPECT_FALSE(cache.find("alice", t0));
  EXPECT_EQ(cache.find("bob", t0), 2);
}

TEST(CredentialCacheTest, ZeroCapacityStillHoldsOne) {
  CredentialCache<int> cache(0);
  auto t0 = Clock::now();
  cache.insert("alice", 1, t0 + 1h);
  cache.insert("bob", 2, t0 + 1h);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.find("bob", t0), 2);
}

TEST(CredentialCacheTest, StaysWithinItsBoundUnderConcurrentUse) {
  constexpr std::size_t bound = 16;
  CredentialCache<int> cache(bound);
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t, t0] {
      for (int i = 0; i < 2000; ++i) {
        std::string key = "user" + std::to_string((i * 7 + t) % 50);
        if (!cache.find(key, t0)) cache.insert(key, i, t0 + 1h);
        if (i % 97 == 0) cache.erase(key);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(cache.size(), bound);
}

}  // namespace
}  // namespace easedge::auth::kerberos
