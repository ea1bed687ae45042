// Process-wide counters and state, and the metrics read from the current runtime at scrape time.
#include "proxy/shared_state.h"

namespace easedge::proxy {

SharedState::SharedState(std::shared_ptr<const Runtime> runtime) : runtime_(std::move(runtime)) {
  // Pre-registered so counting a refusal on the data path never allocates.
  for (std::uint8_t i = 0; i < refusal_count; ++i)
    refusal_counters_[i] = &metrics_.refusals.with({describe(static_cast<Refusal>(i)).name});
  metrics_.watch_revocation(
      [this] { return std::shared_ptr<const auth::RevocationChecker>(this->runtime()->revocation); });
  metrics_.watch_mapping([this] {
    auto mapper = this->runtime()->mapper;
    return mapper ? mapper->stats() : mapping::MappingStats{};
  });
}

void SharedState::note_upstream_failure(std::string detail) {
  upstream_ok_.store(false, std::memory_order_relaxed);
  std::lock_guard lock(upstream_detail_mutex_);
  upstream_detail_ = std::move(detail);
}

std::optional<std::string> SharedState::upstream_failure() const {
  std::lock_guard lock(upstream_detail_mutex_);
  if (upstream_ok_.load(std::memory_order_relaxed)) return std::nullopt;
  return upstream_detail_;
}

}  // namespace easedge::proxy
