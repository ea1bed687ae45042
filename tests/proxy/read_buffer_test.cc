// ReadBuffer's allocator: a read buffer's usual block is recycled on its thread, other sizes are not kept, and
// the free list is bounded.
#include "proxy/read_buffer.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace easedge::proxy {
namespace {

TEST(ReadBuffer, AnIdleConnectionsBlockServesTheNextRequestOnItsThread) {
  std::thread([] {  // a fresh thread: an empty free list
    const void* first = nullptr;
    {
      ReadBuffer buffer;
      buffer.reserve(read_chunk_bytes);
      first = buffer.data().data();
      buffer.shrink_to_fit();  // idle: the block goes back
      EXPECT_EQ(buffer.capacity(), 0u);
      EXPECT_EQ(ReadBlockCache::free_count(), 1u);
    }
    ReadBuffer next;
    next.reserve(read_chunk_bytes);
    EXPECT_EQ(next.data().data(), first) << "the same block, not malloc's";
    EXPECT_EQ(ReadBlockCache::free_count(), 0u);
  }).join();
}

TEST(ReadBuffer, OtherSizesAreNotKeptAndTheFreeListIsBounded) {
  std::thread([] {
    {
      ReadBuffer grown;
      grown.reserve(3 * read_chunk_bytes);  // a large head
    }
    EXPECT_EQ(ReadBlockCache::free_count(), 0u);
    std::vector<ReadBuffer> burst(ReadBlockCache::max_free_blocks + 8);
    for (auto& buffer : burst) buffer.reserve(read_chunk_bytes);
    burst.clear();
    EXPECT_EQ(ReadBlockCache::free_count(), ReadBlockCache::max_free_blocks);
  }).join();
}

}  // namespace
}  // namespace easedge::proxy
