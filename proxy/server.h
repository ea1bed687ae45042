// The proxy process: listeners, one Worker per I/O thread, signals (SIGHUP reload, SIGTERM drain).
#pragma once

#include "proxy/admin_crl_watch.h"
#include "proxy/admin_server.h"
#include "proxy/runtime.h"
#include "proxy/shared_state.h"
#include "proxy/upstream_health.h"
#include "proxy/worker.h"

#include <memory>
#include <vector>

namespace easedge::proxy {

class Server {
public:
  explicit Server(std::shared_ptr<const Runtime> runtime);
  ~Server();

  // Binds, drops privileges, serves until SIGTERM/SIGINT and the drain are over. Returns the exit code.
  int run();

  // The configuration new connections start with. Thread-safe.
  std::shared_ptr<const Runtime> runtime() const { return shared_.runtime(); }

private:
  void bind_listeners();
  void drop_privileges();
  void log_startup_report();
  void reload();
  std::vector<ReadinessCheck> readiness() const;

  SharedState shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::string> bound_addresses_;
  std::uint64_t fd_limit_ = 0;  // RLIMIT_NOFILE after raise_file_limit(), set before workers run
  std::unique_ptr<HealthChecker> health_checks_;  // of the current runtime's servers (upstream.health_check)
  // admin.*: fixed at start (a reload that changes it warns); a reload that keeps it renews the TLS context.
  std::shared_ptr<AdminServer> admin_;
  std::unique_ptr<AdminCrlWatch> admin_crl_watch_;  // admin.crl re-read when a file changes, on `control`
};

// Raises the soft RLIMIT_NOFILE to the hard limit (every held Ping costs two descriptors); returns it.
std::uint64_t raise_file_limit();

// Device connections that `descriptors` (RLIMIT_NOFILE) can carry: two each (device and Exchange), after a
// reserve for everything else the process opens. At least 1.
std::size_t connection_limit_for_descriptors(std::uint64_t descriptors);

}  // namespace easedge::proxy
