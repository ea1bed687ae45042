// Upstream connection reuse (the caller checks liveness with its first read), and the proof a replay needs.
#include "proxy/upstream_pool.h"

#include "proxy/coarse_clock.h"
#include "proxy/runtime.h"

#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cstddef>

namespace easedge::proxy {

namespace {

// The SYN takes one sequence number, and bytes_acked counts it (tests/proxy/upstream_pool_silent_close_test.cc
// checks this against the kernel).
constexpr std::uint64_t syn_sequence_numbers = 1;

// Linux's tcp_info goes on past glibc's copy of it; the fields up to tcpi_bytes_acked (Linux 4.1).
struct TcpInfo {
  tcp_info base;
  std::uint64_t pacing_rate;
  std::uint64_t max_pacing_rate;
  std::uint64_t bytes_acked;
};

std::optional<TcpInfo> tcp_info_of(auth::TlsStream& stream) {
  TcpInfo info{};
  socklen_t length = sizeof info;
  if (::getsockopt(stream.socket().native_handle(), SOL_TCP, TCP_INFO, &info, &length) != 0 ||
      length < offsetof(TcpInfo, bytes_acked) + sizeof info.bytes_acked)
    return std::nullopt;
  return info;
}

}  // namespace

std::optional<auth::TlsStream> UpstreamPool::take(const std::shared_ptr<const Runtime>& runtime, std::size_t server) {
  auto now = coarse_now();
  for (auto i = idle_.size(); i-- > 0;) {
    if (idle_[i].runtime == runtime && idle_[i].server != server) continue;  // another server's: keep it
    Idle idle = std::move(idle_[i]);
    idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
    bool current = idle.runtime == runtime && now - idle.since < idle_timeout_;
    if (current && idle.stream.is_open()) return std::move(idle.stream);
    idle.stream.close();
  }
  return std::nullopt;
}

void UpstreamPool::note_closed_on_its_own(const std::shared_ptr<const Runtime>& runtime, std::size_t server) {
  if (closes_silently(runtime, server)) return;
  if (closes_silently_runtime_ != runtime) closes_silently_servers_ = 0;
  closes_silently_runtime_ = runtime;
  closes_silently_servers_ |= std::uint64_t{1} << server;
  spdlog::warn("upstream {} closed an idle connection on its own (or sent bytes on it unasked) within {} s: "
               "connections to it are no longer reused (set upstream.keepalive: false for a server that closes "
               "after every answer, or lower timeouts.upstream_idle_seconds below its keep-alive timeout)",
               (*runtime->upstreams)[server].config.url, idle_timeout_.count());
}

bool UpstreamPool::closes_silently(const std::shared_ptr<const Runtime>& runtime, std::size_t server) const {
  return runtime == closes_silently_runtime_ && (closes_silently_servers_ >> server & 1) != 0;
}

void UpstreamPool::put(auth::TlsStream stream, std::shared_ptr<const Runtime> runtime, std::size_t server) {
  if (closes_silently(runtime, server)) return stream.close();
  if (idle_.size() >= max_idle_) {
    if (idle_.empty()) return stream.close();
    idle_.front().stream.close();
    idle_.pop_front();
  }
  idle_.push_back(Idle{std::move(stream), std::move(runtime), server, coarse_now()});
}

void UpstreamPool::sweep(const std::shared_ptr<const Runtime>& current) {
  auto now = coarse_now();
  std::erase_if(idle_, [&](Idle& idle) {
    bool drop = idle.runtime != current || now - idle.since >= idle_timeout_;
    if (drop) idle.stream.close();
    return drop;
  });
  if (closes_silently_runtime_ != current) {
    closes_silently_runtime_.reset();
    closes_silently_servers_ = 0;
  }
}

void UpstreamPool::clear() {
  for (auto& idle : idle_) idle.stream.close();
  idle_.clear();
}

DeliveryMark delivery_mark(const auth::TlsStream& stream) {
  return DeliveryMark{syn_sequence_numbers + stream.bytes_sent(), true};
}

bool never_reached_server(auth::TlsStream& stream, const DeliveryMark& before) {
  if (!before.known || !stream.is_open()) return false;
  auto info = tcp_info_of(stream);
  return info && info->base.tcpi_state == TCP_CLOSE && info->bytes_acked == before.bytes_acked;
}

}  // namespace easedge::proxy
