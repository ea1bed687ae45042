// Relay buffer recycling with low-water-mark trimming.
#include "proxy/relay_buffer_pool.h"

#include <malloc.h>

#include <algorithm>

// Defined only when tcmalloc is linked in (the easedge executable by default; not the tests or the sanitizer
// builds): a weak reference is null otherwise.
extern "C" void MallocExtension_ReleaseFreeMemory() __attribute__((weak));

namespace easedge::proxy {

std::unique_ptr<char[]> RelayBufferPool::take(std::size_t size) {
  if (size != size_ || free_.empty()) return std::make_unique_for_overwrite<char[]>(size);
  auto buffer = std::move(free_.back());
  free_.pop_back();
  low_water_ = std::min(low_water_, free_.size());
  return buffer;
}

void RelayBufferPool::give_back(std::unique_ptr<char[]> buffer, std::size_t size) {
  if (!buffer) return;
  if (size != size_) {  // limits.relay_buffer_bytes changed with a reload
    free_.clear();
    size_ = size;
    low_water_ = 0;
  }
  if (free_.size() < max_free_) free_.push_back(std::move(buffer));
}

std::size_t RelayBufferPool::trim() {
  std::size_t unused = std::min(low_water_, free_.size());
  free_.resize(free_.size() - unused);
  low_water_ = free_.size();
  return unused;
}

void release_free_heap_memory() {
  // Never glibc's malloc_trim under tcmalloc: glibc's heap is then unused and uninitialised, and the first
  // malloc_trim initialises it; two I/O threads sweeping at the same moment raced there and crashed easedge.
  if (MallocExtension_ReleaseFreeMemory != nullptr) return MallocExtension_ReleaseFreeMemory();
  ::malloc_trim(0);
}

}  // namespace easedge::proxy
