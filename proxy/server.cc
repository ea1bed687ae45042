// Process-level orchestration: binding, privileges, threads, reload and drain.
#include "proxy/server.h"

#include "config/version.h"
#include "proxy/console/console.h"
#include "proxy/endpoint_text.h"
#include "proxy/sharded_count.h"

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <thread>

namespace easedge::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// How often a draining server checks whether every connection is gone.
constexpr auto drain_poll_interval = std::chrono::milliseconds(100);
// Descriptors kept out of the connection limit sized from RLIMIT_NOFILE: listeners (one per I/O thread per
// address), each thread's epoll/eventfd/timerfd, the admin listener and its scrapes, log files, CRL and OCSP
// fetches, LDAP and KDC connections, the CRL files re-read. A few dozen in practice; the rest is margin, so an
// accept never fails with EMFILE while the limit says there is room. Never more than half of a small limit.
constexpr std::uint64_t reserved_descriptors = 256;

tcp::endpoint listen_endpoint(const config::ListenerConfig& listener, const config::Config& config) {
  boost::system::error_code ec;
  auto address = net::ip::make_address(listener.host, ec);
  if (!ec) return {address, listener.port};
  net::io_context io;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(listener.host, std::to_string(listener.port), ec);
  if (ec || results.empty())
    throw config::ConfigError(config.source_file, "listen",
                              "cannot resolve '" + listener.host + "': " + ec.message());
  return results.begin()->endpoint();
}

tcp::acceptor make_acceptor(net::io_context& io, const tcp::endpoint& endpoint) {
  tcp::acceptor acceptor(io);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  // Every worker listens on the same port; the kernel spreads new connections across them.
  int one = 1;
  ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (endpoint.address().is_v6()) acceptor.set_option(net::ip::v6_only(true));
  acceptor.bind(endpoint);
  acceptor.listen(net::socket_base::max_listen_connections);
  return acceptor;
}

// SO_REUSEPORT would let a second easedge (or anything else of the same user) silently share the port and
// take half the devices: first make sure nothing listens there yet, with an ordinary bind.
void require_free_port(const tcp::endpoint& endpoint, const config::ListenerConfig& listener,
                       const config::Config& config) {
  if (endpoint.port() == 0) return;
  net::io_context io;
  tcp::acceptor probe(io);
  boost::system::error_code ec;
  probe.open(endpoint.protocol(), ec);
  if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) probe.bind(endpoint, ec);
  if (ec)
    throw config::ConfigError(config.source_file, "listen",
                              "cannot listen on " + listener.host + ":" + std::to_string(listener.port) + ": " +
                                  ec.message());
}

}  // namespace

std::uint64_t raise_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

std::size_t connection_limit_for_descriptors(std::uint64_t descriptors) {
  auto reserve = std::min(reserved_descriptors, descriptors / 2);
  return std::max<std::uint64_t>(1, (descriptors - reserve) / 2);
}

Server::Server(std::shared_ptr<const Runtime> runtime) : shared_(std::move(runtime)) {
  auto threads = shared_.runtime()->config.threads;
  // Per Exchange server (label server="<url>"), from the current runtime's servers.
  shared_.registry().add_collector(
      [this](SampleWriter& out) { write_upstream_server_samples(out, *this->runtime()->upstreams); });
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (std::size_t i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>(shared_, i));
}

// Workers go first: destroying their io_contexts destroys the handlers still queued there and with them the
// last references to sessions, whose destructors count themselves out of shared_'s metrics and connections (members
// are destroyed in reverse order, so by default those went before the workers: a use after free at exit
// whenever the drain time ran out with connections open, found under ASan).
Server::~Server() { workers_.clear(); }

void Server::bind_listeners() {
  auto runtime = this->runtime();
  for (const auto& listener : runtime->config.listen) {
    auto endpoint = listen_endpoint(listener, runtime->config);
    require_free_port(endpoint, listener, runtime->config);
    for (auto& worker : workers_) {
      try {
        auto acceptor = make_acceptor(worker->io(), endpoint);
        endpoint = acceptor.local_endpoint();  // port 0: the others share the port the first one got
        worker->add_acceptor(std::move(acceptor), listener.proxy_protocol);
      } catch (const boost::system::system_error& e) {
        throw config::ConfigError(runtime->config.source_file, "listen",
                                  "cannot listen on " + listener.host + ":" + std::to_string(listener.port) +
                                      ": " + e.code().message());
      }
    }
    bound_addresses_.push_back(endpoint_text(endpoint) + (listener.proxy_protocol ? " (PROXY protocol expected)" : ""));
  }
}

void Server::drop_privileges() {
  const auto& user = runtime()->config.user;
  if (user.empty()) return;
  passwd* entry = getpwnam(user.c_str());
  if (entry == nullptr) throw config::ConfigError(runtime()->config.source_file, "user", "no such user '" + user + "'");
  if (geteuid() != 0) {
    if (geteuid() == entry->pw_uid) return;
    throw config::ConfigError(runtime()->config.source_file, "user",
                              "switching to '" + user + "' needs root; running as uid " + std::to_string(geteuid()));
  }
  if (initgroups(entry->pw_name, entry->pw_gid) != 0 || setgid(entry->pw_gid) != 0 || setuid(entry->pw_uid) != 0)
    throw config::ConfigError(runtime()->config.source_file, "user",
                              "cannot switch to '" + user + "': " + std::strerror(errno));
  spdlog::info("dropped privileges to user {} (uid {})", user, entry->pw_uid);
}

void Server::log_startup_report() {
  auto runtime = this->runtime();
  spdlog::info("easedge {} starting with {} ({} I/O threads, fd limit {})", version_string,
               runtime->config.source_file.string(), workers_.size(), fd_limit_);
  auto configured = runtime->config.limits.max_connections;
  spdlog::info("connection limit {} ({})", shared_.connection_limit(runtime->config),
               configured == 0 ? "limits.max_connections 0: sized from the fd limit" : "limits.max_connections");
  auto fd_sized = connection_limit_for_descriptors(fd_limit_);
  if (configured > fd_sized)
    spdlog::warn("limits.max_connections ({}) is more than the fd limit carries ({}): past that, accepts fail "
                 "with 'too many open files' and pause", configured, fd_sized);
  for (const auto& address : bound_addresses_) spdlog::info("proxy listening on {}", address);
  for (const auto& line : runtime->describe()) spdlog::info("{}", line);
}

int Server::run() {
  // Signals first: a SIGTERM that arrives as soon as the listeners are up must drain, not kill.
  net::io_context control;
  net::signal_set signals(control, SIGINT, SIGTERM, SIGHUP);
  fd_limit_ = raise_file_limit();
  shared_.set_fd_sized_connection_limit(connection_limit_for_descriptors(fd_limit_));
  bind_listeners();
  drop_privileges();
  log_startup_report();
  for (const auto& kerberos : runtime()->upstreams->delegators()) kerberos->warm_up();
  if (runtime()->config.upstream.health_check) health_checks_ = std::make_unique<HealthChecker>(runtime());

  if (const auto& admin_config = runtime()->config.admin) {
    try {
      auto console = std::make_shared<const console::Console>(console::ConsoleSources{
          &shared_.metrics(), &shared_.console_log(), [this] { return runtime(); }, [this] { return readiness(); }});
      admin_ = AdminServer::create(
          control, *admin_config, shared_.registry(), [this] { return readiness(); }, runtime()->config.timeouts,
          [console](const AdminRequest& request, auto done) { return console->serve(request, std::move(done)); },
          runtime()->admin_context);
    } catch (const std::exception& e) {
      throw config::ConfigError(runtime()->config.source_file, "admin.listen", e.what());
    }
    admin_->start();
    admin_crl_watch_ = std::make_unique<AdminCrlWatch>(
        control,
        [this]() -> std::shared_ptr<const config::Config> {
          auto current = runtime();
          if (!current->config.admin || !(*current->config.admin == admin_->config())) return nullptr;
          return {current, &current->config};
        },
        [this](std::shared_ptr<SSL_CTX> context) { admin_->use_tls_context(std::move(context)); });
    admin_crl_watch_->start();
  }

  std::vector<std::thread> threads;
  for (auto& worker : workers_) {
    worker->start();
    threads.emplace_back([&io = worker->io(), index = worker->index()] {
      set_io_thread_shard(index);
      io.run();
    });
  }

  net::steady_timer drain_timer(control);
  std::chrono::steady_clock::time_point drain_deadline;
  bool listeners_open = true;
  std::function<void()> wait_for_signal;
  auto& connections = shared_.connections();
  std::function<void()> poll_drain = [&] {
    bool done = connections.load() == 0 || std::chrono::steady_clock::now() >= drain_deadline;
    if (done) {
      if (connections.load() > 0)
        spdlog::warn("drain time over: closing {} remaining connections", connections.load());
      for (auto& worker : workers_) net::post(worker->io(), [w = worker.get()] { w->stop(); });
      signals.cancel();
      if (admin_crl_watch_) admin_crl_watch_->stop();
      if (admin_) admin_->stop();
      return;
    }
    drain_timer.expires_after(drain_poll_interval);
    drain_timer.async_wait([&](boost::system::error_code ec) {
      if (!ec) poll_drain();
    });
  };
  // After timeouts.drain_delay (the balancer has seen /readyz fail): no new connections; idle ones close.
  std::function<void()> close_listeners = [&] {
    listeners_open = false;
    spdlog::info("listeners closed: {} open connections finish their requests", connections.load());
    for (auto& worker : workers_) net::post(worker->io(), [w = worker.get()] { w->drain(); });
    poll_drain();
  };
  wait_for_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        reload();
        return wait_for_signal();
      }
      if (shared_.start_draining()) {
        spdlog::warn("second stop signal: closing every connection now");
        drain_deadline = std::chrono::steady_clock::now();
        if (listeners_open) {
          drain_timer.cancel();
          close_listeners();
        }
        return;
      }
      // Drain for balancers: /readyz fails and answers carry Connection: close from now on (draining_), while
      // the listeners keep accepting until the balancer's health checks have noticed.
      const auto timeouts = runtime()->config.timeouts;
      spdlog::info("stopping: /readyz fails now; listeners accept for {} s more, then {} open connections get "
                   "{} s to finish", timeouts.drain_delay.count(), connections.load(), timeouts.drain.count());
      drain_deadline = std::chrono::steady_clock::now() + timeouts.drain_delay + timeouts.drain;
      wait_for_signal();  // a second signal ends the drain early; poll_drain cancels this wait when done
      drain_timer.expires_after(timeouts.drain_delay);
      drain_timer.async_wait([&](boost::system::error_code ec) {
        if (!ec) close_listeners();
      });
    });
  };
  wait_for_signal();
  control.run();
  admin_crl_watch_.reset();  // its timer and admin_'s acceptor belong to `control`
  admin_.reset();
  for (auto& thread : threads) thread.join();
  health_checks_.reset();
  spdlog::info("stopped");
  return 0;
}

void Server::reload() {
  auto current = runtime();
  spdlog::info("SIGHUP: reloading {}", current->config.source_file.string());
  try {
    auto next = Runtime::build(config::load_config(current->config.source_file), current.get());
    if (next->config.listen.size() != current->config.listen.size())
      spdlog::warn("listen addresses changed: they take effect at the next restart");
    if (admin_ && next->config.admin && *next->config.admin == admin_->config()) {
      if (next->admin_context) admin_->use_tls_context(next->admin_context);  // renewed certificate or CA files
    } else if (admin_ || next->config.admin) {
      spdlog::warn("admin settings changed: they take effect at the next restart");
    }
    for (const auto& line : next->describe()) spdlog::info("{}", line);
    for (const auto& kerberos : next->upstreams->delegators()) kerberos->warm_up();
    health_checks_.reset();
    if (next->config.upstream.health_check) health_checks_ = std::make_unique<HealthChecker>(next);
    shared_.set_runtime(std::move(next));
    if (admin_crl_watch_) admin_crl_watch_->remember_files();
    shared_.metrics().reloads.inc();
    spdlog::info("reload done: new connections use the new configuration; open ones keep theirs");
  } catch (const std::exception& e) {
    shared_.metrics().reload_failures.inc();
    spdlog::error("reload refused, still serving the previous configuration: {}", e.what());
  }
}

std::vector<ReadinessCheck> Server::readiness() const {
  auto runtime = this->runtime();
  std::vector<ReadinessCheck> checks;
  bool draining = shared_.draining();
  checks.push_back({"listeners", !bound_addresses_.empty() && !draining, draining ? "draining" : ""});
  if (runtime->upstreams->size() > 1) {
    checks.push_back(upstream_servers_readiness(*runtime->upstreams));
  } else {
    auto failure = shared_.upstream_failure();
    checks.push_back({"upstream", !failure, failure ? "last upstream connection failed: " + *failure : ""});
  }
  checks.push_back(revocation_readiness(*runtime->revocation));
  return checks;
}

}  // namespace easedge::proxy
