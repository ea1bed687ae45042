// Upstream connection reuse with a liveness check before each reuse.
#include "proxy/upstream_pool.h"

#include <sys/socket.h>

#include <cerrno>

namespace easedge::proxy {

namespace {

// A pooled connection is reusable only if the peer has neither closed it nor sent anything unasked.
bool looks_alive(auth::TlsStream& stream) {
  if (!stream.is_open()) return false;
  // With read-ahead, bytes Exchange sent after its answer (a close_notify) may already sit in OpenSSL.
  if (stream.holds_unread_bytes()) return false;
  char byte;
  ssize_t n = ::recv(stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

std::optional<auth::TlsStream> UpstreamPool::take(const std::shared_ptr<const Runtime>& runtime, std::size_t server) {
  auto now = std::chrono::steady_clock::now();
  for (auto i = idle_.size(); i-- > 0;) {
    if (idle_[i].runtime == runtime && idle_[i].server != server) continue;  // another server's: keep it
    Idle idle = std::move(idle_[i]);
    idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
    if (idle.runtime == runtime && now - idle.since < idle_timeout_ && looks_alive(idle.stream))
      return std::move(idle.stream);
    idle.stream.close();
  }
  return std::nullopt;
}

void UpstreamPool::put(auth::TlsStream stream, std::shared_ptr<const Runtime> runtime, std::size_t server) {
  if (idle_.size() >= max_idle_) {
    if (idle_.empty()) return stream.close();
    idle_.front().stream.close();
    idle_.pop_front();
  }
  idle_.push_back(Idle{std::move(stream), std::move(runtime), server, std::chrono::steady_clock::now()});
}

void UpstreamPool::sweep(const std::shared_ptr<const Runtime>& current) {
  auto now = std::chrono::steady_clock::now();
  std::erase_if(idle_, [&](Idle& idle) {
    bool drop = idle.runtime != current || now - idle.since >= idle_timeout_;
    if (drop) idle.stream.close();
    return drop;
  });
}

void UpstreamPool::clear() {
  for (auto& idle : idle_) idle.stream.close();
  idle_.clear();
}

}  // namespace easedge::proxy
