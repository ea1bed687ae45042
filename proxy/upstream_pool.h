// Idle keep-alive connections to Exchange, kept per I/O thread so taking one needs no lock.
#pragma once

#include "auth/tls_stream.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>

namespace easedge::proxy {

struct Runtime;

class UpstreamPool {
public:
  UpstreamPool(std::size_t max_idle, std::chrono::seconds idle_timeout)
      : max_idle_(max_idle), idle_timeout_(idle_timeout) {}

  // The most recently used idle connection to `server` (an index into runtime->upstreams) made under `runtime`
  // and not idle past the timeout, if any. Whether the server still has it is the caller's first read to find
  // out (Relay::send_after_liveness_read): take() makes no system call.
  std::optional<auth::TlsStream> take(const std::shared_ptr<const Runtime>& runtime, std::size_t server);
  // A pooled connection to `server` turned out closed by the server, or holding bytes it sent unasked: that
  // server's connections are no longer pooled under `runtime` (see closes_silently_servers_).
  void note_closed_on_its_own(const std::shared_ptr<const Runtime>& runtime, std::size_t server);
  // Keeps `stream`, a connection to `server`, for reuse (closes the oldest when the pool is full; closes it when
  // that server was noted closing pooled connections on its own).
  void put(auth::TlsStream stream, std::shared_ptr<const Runtime> runtime, std::size_t server);
  // Closes connections idle for longer than the idle timeout, and those of replaced runtimes.
  void sweep(const std::shared_ptr<const Runtime>& current);
  // Closes everything (shutdown).
  void clear();

private:
  struct Idle {
    auth::TlsStream stream;
    std::shared_ptr<const Runtime> runtime;
    std::size_t server;
    std::chrono::steady_clock::time_point since;
  };
  std::size_t max_idle_;
  std::chrono::seconds idle_timeout_;
  std::deque<Idle> idle_;  // back = most recently returned
  bool closes_silently(const std::shared_ptr<const Runtime>& runtime, std::size_t server) const;

  // The servers (bits by index, of this runtime) that closed a pooled connection before the idle timeout without
  // saying so (SOGo closes after every answer; others close idle connections sooner than
  // timeouts.upstream_idle_seconds). Their connections are no longer pooled: one the server closes as the next
  // request goes out would fail it.
  std::shared_ptr<const Runtime> closes_silently_runtime_;
  std::uint64_t closes_silently_servers_ = 0;
};

// Whether a request sent on a reused connection provably never reached the server's application, so it can be
// sent again on a fresh connection. Mark the connection before the request goes out; after it failed without
// a byte of answer, the proof is that the server's TCP reset the connection without acknowledging any byte
// of the request: data that arrives at a socket the server has closed is answered with a reset, never
// acknowledged. Anything else (an acknowledgement, or no verdict yet) means it may have been processed.
// The mark is counted, not asked of the kernel: the bytes the stream sent so far, plus the SYN's one sequence
// number, are what TCP_INFO's bytes_acked reads once the server's kernel acknowledged all of them; equal to it
// after the failure, not a byte of the request was acknowledged.
struct DeliveryMark {
  std::uint64_t bytes_acked = 0;
  bool known = false;
};
DeliveryMark delivery_mark(const auth::TlsStream& stream);
bool never_reached_server(auth::TlsStream& stream, const DeliveryMark& before);

}  // namespace easedge::proxy
