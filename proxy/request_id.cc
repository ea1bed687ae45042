// Request id generation: a per-process random base, a per-worker range, a counter.
#include "proxy/request_id.h"

#include <openssl/rand.h>

#include <stdexcept>

namespace easedge::proxy {
namespace {

// Requests one worker may number before reaching the next worker's range.
constexpr unsigned worker_range_bits = 40;

std::uint64_t process_base() {
  // Drawn once: a random base per process keeps ids from an earlier run out of this run's log searches.
  static const std::uint64_t base = [] {
    std::uint64_t value = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&value), sizeof value) != 1)
      throw std::runtime_error("cannot draw the request id base: RAND_bytes failed");
    return value;
  }();
  return base;
}

}  // namespace

RequestIds::RequestIds(std::size_t worker_index)
    : next_(process_base() + (static_cast<std::uint64_t>(worker_index) << worker_range_bits)) {}

std::string RequestIds::next() {
  static constexpr char digits[] = "0123456789abcdef";
  std::uint64_t value = next_++;
  std::string id(length, '0');
  for (std::size_t i = length; i-- > 0; value >>= 4) id[i] = digits[value & 0x0f];
  return id;
}

}  // namespace easedge::proxy
