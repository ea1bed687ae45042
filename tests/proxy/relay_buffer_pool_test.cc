// RelayBufferPool: buffers are reused, bounded, and given back once the load stops needing them.
#include "proxy/relay_buffer_pool.h"

#include <gtest/gtest.h>

namespace easedge::proxy {
namespace {

constexpr std::size_t buffer_size = 64 * 1024;

TEST(RelayBufferPoolTest, GivenBackBuffersAreReused) {
  RelayBufferPool pool(4);
  auto first = pool.take(buffer_size);
  char* address = first.get();
  pool.give_back(std::move(first), buffer_size);
  EXPECT_EQ(pool.free_count(), 1u);
  EXPECT_EQ(pool.take(buffer_size).get(), address);
  EXPECT_EQ(pool.free_count(), 0u);
}

TEST(RelayBufferPoolTest, KeepsAtMostMaxFreeAndIgnoresNull) {
  RelayBufferPool pool(2);
  for (int i = 0; i < 5; ++i) pool.give_back(pool.take(buffer_size), buffer_size);  // one at a time: one buffer cycles
  EXPECT_EQ(pool.free_count(), 1u);
  std::vector<std::unique_ptr<char[]>> held;
  for (int i = 0; i < 5; ++i) held.push_back(pool.take(buffer_size));
  for (auto& buffer : held) pool.give_back(std::move(buffer), buffer_size);
  EXPECT_EQ(pool.free_count(), 2u);
  pool.give_back(nullptr, buffer_size);
  EXPECT_EQ(pool.free_count(), 2u);
}

TEST(RelayBufferPoolTest, ANewSizeDropsBuffersOfTheOldOne) {
  RelayBufferPool pool(4);
  pool.give_back(pool.take(buffer_size), buffer_size);
  pool.give_back(std::make_unique<char[]>(1024), 1024);  // limits.relay_buffer_bytes changed by a reload
  EXPECT_EQ(pool.free_count(), 1u);
  auto buffer = pool.take(buffer_size);  // not the 1 KiB one
  EXPECT_EQ(pool.free_count(), 1u);
}

TEST(RelayBufferPoolTest, TrimFreesOnlyWhatStayedUnusedSinceThePreviousTrim) {
  RelayBufferPool pool(8);
  // A burst: six requests relayed at once.
  std::vector<std::unique_ptr<char[]>> burst;
  for (int i = 0; i < 6; ++i) burst.push_back(pool.take(buffer_size));
  for (auto& buffer : burst) pool.give_back(std::move(buffer), buffer_size);
  EXPECT_EQ(pool.trim(), 0u);  // the low-water mark was 0 during the burst: nothing proven unused yet
  EXPECT_EQ(pool.free_count(), 6u);

  // Steady load afterwards: two requests at a time.
  for (int round = 0; round < 3; ++round) {
    auto a = pool.take(buffer_size);
    auto b = pool.take(buffer_size);
    pool.give_back(std::move(a), buffer_size);
    pool.give_back(std::move(b), buffer_size);
  }
  EXPECT_EQ(pool.trim(), 4u);  // four sat unused through the whole interval
  EXPECT_EQ(pool.free_count(), 2u);

  // Idle: the rest goes at the next trim.
  EXPECT_EQ(pool.trim(), 2u);
  EXPECT_EQ(pool.free_count(), 0u);
  EXPECT_EQ(pool.trim(), 0u);
}

}  // namespace
}  // namespace easedge::proxy
