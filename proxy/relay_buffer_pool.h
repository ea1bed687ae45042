// Free relay buffers of one I/O thread: recycled across requests, given back when the load no longer needs them.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace easedge::proxy {

// Allocating (and zeroing) a 64 KiB buffer per request, and giving it back to the kernel after, cost more CPU
// than relaying a small Sync: buffers are kept for reuse. A burst (a reconnect storm, many uploads at once)
// must not pin its buffers for good, so trim() frees those no request took since the previous trim.
// Not thread-safe: one pool per I/O thread.
class RelayBufferPool {
public:
  explicit RelayBufferPool(std::size_t max_free) : max_free_(max_free) {}

  // A buffer of `size` bytes (contents unspecified).
  std::unique_ptr<char[]> take(std::size_t size);
  // Keeps `buffer` (of `size` bytes) for reuse, unless the pool is full. A null buffer is ignored.
  void give_back(std::unique_ptr<char[]> buffer, std::size_t size);
  // Frees the free buffers that stayed unused since the previous trim (the low-water mark); returns how many.
  std::size_t trim();

  std::size_t free_count() const { return free_.size(); }

private:
  std::size_t max_free_;
  std::vector<std::unique_ptr<char[]>> free_;
  std::size_t size_ = 0;       // of every buffer in free_ (limits.relay_buffer_bytes may change on reload)
  std::size_t low_water_ = 0;  // fewest free buffers since the previous trim
};

// Hands the heap's free pages back to the kernel, through the allocator the process runs on: tcmalloc's
// MallocExtension_ReleaseFreeMemory when the executable is linked with it (EASEDGE_TCMALLOC), else glibc's
// malloc_trim. Thread-safe.
void release_free_heap_memory();

}  // namespace easedge::proxy
