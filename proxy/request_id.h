// Request ids: a short per-request token that joins what a device was told with the operator's log lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace easedge::proxy {

// The response header that carries the id on refusals (the name load balancers and Envoy use for it).
inline constexpr std::string_view request_id_header = "X-Request-Id";

// One per worker, used only on its thread: no lock on the data path. Ids are 16 lowercase hex digits.
// Unique within the process: each worker counts in its own 2^40 range above a base drawn from RAND_bytes
// once per process. Across restarts two runs collide only if their random bases land within the number of
// requests served of each other, which for 64 bits is negligible.
class RequestIds {
public:
  // Throws std::runtime_error (at start-up) when the random base cannot be drawn.
  explicit RequestIds(std::size_t worker_index);

  std::string next();

  static constexpr std::size_t length = 16;

private:
  std::uint64_t next_;
};

}  // namespace easedge::proxy
