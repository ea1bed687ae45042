// Relay buffer recycling with low-water-mark trimming.
#include "proxy/relay_buffer_pool.h"

#include <algorithm>

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

}  // namespace easedge::proxy
