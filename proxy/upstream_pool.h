// Idle keep-alive connections to Exchange, kept per I/O thread so taking one needs no lock.
#pragma once

#include "auth/tls_stream.h"

#include <chrono>
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
  // that still looks alive, if any.
  std::optional<auth::TlsStream> take(const std::shared_ptr<const Runtime>& runtime, std::size_t server);
  // Keeps `stream`, a connection to `server`, for reuse (closes the oldest when the pool is full).
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
};

}  // namespace easedge::proxy
