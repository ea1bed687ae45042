// The read buffers of the device and Exchange sides: Beast flat buffers whose usual block (one TLS record's
// worth) is recycled through a free list of the I/O thread instead of going to malloc and back per request.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>

#include <cstddef>
#include <memory>
#include <new>
#include <vector>

namespace easedge::proxy {

// Capacity given to a read buffer while a message is read: a whole TLS record. Beast reads as much as the
// buffer has room for, and a buffer shrunk while idle would otherwise be read into 512 bytes at a time (one
// asynchronous round per 512 bytes, 32 per record of an upload). Given back when the connection is idle.
// Also the slack over a head's limit a read buffer may hold (a chunk-size line or trailers wait there whole).
inline constexpr std::size_t read_chunk_bytes = 16 * 1024;

// Free read_chunk_bytes blocks of the calling thread. An idle connection holds no read buffer, so each
// keep-alive request took two such blocks and gave them back; blocks that size are past glibc's per-thread
// caches, and the frees, consolidations and re-faulted pages cost about a tenth of a keep-alive Sync's CPU
// (docs/benchmarks.md). Thread-local because a session runs on one I/O thread; a block freed on another
// thread (a shutdown) joins that thread's list.
class ReadBlockCache {
public:
  // Free blocks kept per thread at most (1 MiB): what a burst gives back beyond that goes to the allocator.
  static constexpr std::size_t max_free_blocks = 64;

  static void* take() {
    auto& free = free_blocks();
    if (free.empty()) return ::operator new(read_chunk_bytes);
    void* block = free.back();
    free.pop_back();
    return block;
  }

  static void give_back(void* block) {
    auto& free = free_blocks();
    if (free.size() < max_free_blocks) return free.push_back(block);
    ::operator delete(block);
  }

  static std::size_t free_count() { return free_blocks().size(); }

private:
  struct FreeList {
    FreeList() { blocks.reserve(max_free_blocks); }
    ~FreeList() {
      for (void* block : blocks) ::operator delete(block);
    }
    std::vector<void*> blocks;
  };
  static std::vector<void*>& free_blocks() {
    thread_local FreeList list;
    return list.blocks;
  }
};

// std::allocator, except that read_chunk_bytes blocks come from and go back to the ReadBlockCache.
template <class T>
class RecycledReadAllocator {
public:
  using value_type = T;

  RecycledReadAllocator() = default;
  template <class U>
  RecycledReadAllocator(const RecycledReadAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n * sizeof(T) == read_chunk_bytes) return static_cast<T*>(ReadBlockCache::take());
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) {
    if (n * sizeof(T) == read_chunk_bytes) return ReadBlockCache::give_back(p);
    std::allocator<T>().deallocate(p, n);
  }

  friend bool operator==(const RecycledReadAllocator&, const RecycledReadAllocator&) { return true; }
};

using ReadBuffer = boost::beast::basic_flat_buffer<RecycledReadAllocator<char>>;

}  // namespace easedge::proxy
