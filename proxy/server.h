// The proxy process: listeners, one Worker per I/O thread, signals (SIGHUP reload, SIGTERM drain).
#pragma once

#include "proxy/admin_server.h"
#include "proxy/metrics.h"
#include "proxy/refusal.h"
#include "proxy/runtime.h"
#include "proxy/upstream_health.h"
#include "proxy/worker.h"

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace easedge::proxy {

class Server {
public:
  explicit Server(std::shared_ptr<const Runtime> runtime);
  ~Server();

  // Binds, drops privileges, serves until SIGTERM/SIGINT and the drain are over. Returns the exit code.
  int run();

  // The configuration new connections start with. Thread-safe.
  std::shared_ptr<const Runtime> runtime() const { return runtime_.load(); }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  // Open device connections, across all workers; connection_limit() applies to it.
  std::atomic<std::size_t>& connections() { return connections_; }
  // limits.max_connections of `config`, or when it is 0 the limit sized from the descriptor limit at start.
  std::size_t connection_limit(const config::Config& config) const {
    return config.limits.max_connections != 0 ? config.limits.max_connections : fd_sized_connection_limit_;
  }

  EasedgeMetrics& metrics() { return metrics_; }
  Counter& refusal_counter(Refusal reason) { return *refusal_counters_[static_cast<std::size_t>(reason)]; }

  // The upstream's last connection outcome, for /readyz.
  void note_upstream_success() { upstream_ok_.store(true, std::memory_order_relaxed); }
  void note_upstream_failure(std::string detail);

private:
  void bind_listeners();
  void drop_privileges();
  void log_startup_report();
  void reload();
  std::vector<ReadinessCheck> readiness() const;

  std::atomic<std::shared_ptr<const Runtime>> runtime_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::string> bound_addresses_;
  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> connections_{0};
  std::uint64_t fd_limit_ = 0;                   // RLIMIT_NOFILE after raise_file_limit(), set before workers run
  std::size_t fd_sized_connection_limit_ = 1;    // from fd_limit_ (connection_limit_for_descriptors)
  MetricsRegistry registry_;
  EasedgeMetrics metrics_{registry_};
  std::array<Counter*, refusal_count> refusal_counters_{};
  std::atomic<bool> upstream_ok_{true};
  mutable std::mutex upstream_detail_mutex_;
  std::string upstream_detail_;
  std::unique_ptr<HealthChecker> health_checks_;  // of the current runtime's servers (upstream.health_check)
};

// Raises the soft RLIMIT_NOFILE to the hard limit (every held Ping costs two descriptors); returns it.
std::uint64_t raise_file_limit();

// Device connections that `descriptors` (RLIMIT_NOFILE) can carry: two each (device and Exchange), after a
// reserve for everything else the process opens. At least 1.
std::size_t connection_limit_for_descriptors(std::uint64_t descriptors);

}  // namespace easedge::proxy
