// What every I/O thread reads and reports to: the current runtime, the draining flag, the connection count,
// metrics, the console's log and the upstream's health. Thread-safe; one per process, owned by the Server.
#pragma once

#include "proxy/console/console_log.h"
#include "proxy/metrics.h"
#include "proxy/refusal.h"
#include "proxy/runtime.h"

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace easedge::proxy {

class SharedState {
public:
  explicit SharedState(std::shared_ptr<const Runtime> runtime);

  // The configuration new connections start with; SIGHUP stores a new one.
  std::shared_ptr<const Runtime> runtime() const { return runtime_.load(); }
  void set_runtime(std::shared_ptr<const Runtime> runtime) { runtime_.store(std::move(runtime)); }

  bool draining() const { return draining_.load(std::memory_order_relaxed); }
  // Returns whether the process was draining already (a second stop signal).
  bool start_draining() { return draining_.exchange(true); }

  // Open device connections, across all threads; connection_limit() applies to it.
  std::atomic<std::size_t>& connections() { return connections_; }
  // limits.max_connections of `config`, or when it is 0 the limit sized from the descriptor limit.
  std::size_t connection_limit(const config::Config& config) const {
    return config.limits.max_connections != 0 ? config.limits.max_connections : fd_sized_connection_limit_;
  }
  // Set once at start, before any thread accepts.
  void set_fd_sized_connection_limit(std::size_t limit) { fd_sized_connection_limit_ = limit; }

  MetricsRegistry& registry() { return registry_; }
  EasedgeMetrics& metrics() { return metrics_; }
  Counter& refusal_counter(Refusal reason) { return *refusal_counters_[static_cast<std::size_t>(reason)]; }

  // Recent refusals and the busiest devices and users, for the operator console.
  console::ConsoleLog& console_log() { return console_log_; }

  // The upstream's last connection outcome, for /readyz.
  // Read before written: a store for every request would move the cache line between the I/O threads' cores.
  void note_upstream_success() {
    if (!upstream_ok_.load(std::memory_order_relaxed)) upstream_ok_.store(true, std::memory_order_relaxed);
  }
  void note_upstream_failure(std::string detail);
  // What the last connection attempt that failed said, or nothing when the last one succeeded.
  std::optional<std::string> upstream_failure() const;

private:
  std::atomic<std::shared_ptr<const Runtime>> runtime_;
  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> connections_{0};
  std::size_t fd_sized_connection_limit_ = 1;  // connection_limit_for_descriptors(RLIMIT_NOFILE)
  MetricsRegistry registry_;
  EasedgeMetrics metrics_{registry_};
  std::array<Counter*, refusal_count> refusal_counters_{};
  console::ConsoleLog console_log_;
  std::atomic<bool> upstream_ok_{true};
  mutable std::mutex upstream_detail_mutex_;
  std::string upstream_detail_;
};

}  // namespace easedge::proxy
