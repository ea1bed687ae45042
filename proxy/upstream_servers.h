// The Exchange servers of one configuration: least-connections choice, passive health, source addresses.
#pragma once

#include "auth/kerberos/delegator.h"
#include "config/config.h"
#include "proxy/admin_server.h"
#include "proxy/metrics.h"
#include "proxy/sharded_count.h"

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace easedge::proxy {

// Load and health of one server, updated by every I/O thread (atomics only; what every request updates is
// sharded per thread). Kept across reloads for a server whose URL stays, so its counters and its connections
// in use carry over.
struct UpstreamServerState {
  ShardedCount active;                      // connections requests use right now (idle pooled ones not counted)
  ShardedCount requests;                    // requests given to the server (a retry counts on each server tried)
  std::atomic<std::uint64_t> failures{0};   // connect failures and timeouts
  std::atomic<std::int64_t> down_until{0};  // steady_clock ticks; the server is skipped until then
};

struct UpstreamServer {
  config::UpstreamServerConfig config;
  std::vector<boost::asio::ip::tcp::endpoint> endpoints;     // resolved once per configuration
  std::shared_ptr<auth::kerberos::Delegator> kerberos;        // for config.service; null without auth: kerberos
  std::shared_ptr<UpstreamServerState> state;
};

// What the console and /metrics show of a server.
struct UpstreamServerStatus {
  std::string url;
  bool up = true;
  std::size_t active = 0;
  std::uint64_t requests = 0;
  std::uint64_t failures = 0;
  std::chrono::seconds down_for{0};  // left of the current down period; 0 when up
};

class UpstreamServers {
public:
  using Clock = std::chrono::steady_clock;
  // Bit i set: server i was already tried for this request (config::max_upstream_servers bits).
  using Tried = std::uint64_t;

  // `retry`: how long a failed server is skipped. `sources`: addresses outgoing connections bind to, in turn.
  UpstreamServers(std::vector<UpstreamServer> servers, std::chrono::seconds retry,
                  std::vector<boost::asio::ip::address> sources);

  // Resolves every server of `config` (a DNS lookup never sits on a request's path), with the state of
  // `previous`'s server of the same URL when there is one, and one Kerberos delegator per distinct SPN.
  // Throws config::ConfigError naming the key.
  static std::shared_ptr<UpstreamServers> build(const config::Config& config, const UpstreamServers* previous);

  std::size_t size() const { return servers_.size(); }
  const UpstreamServer& operator[](std::size_t index) const { return servers_[index]; }
  // One delegator per distinct SPN (empty without auth: kerberos).
  const std::vector<std::shared_ptr<auth::kerberos::Delegator>>& delegators() const { return delegators_; }

  // The up server not in `tried` with the fewest active connections (ties taken in turn), now counted active
  // there; nothing when every untried server is down. Thread-safe.
  std::optional<std::size_t> acquire(Tried tried, Clock::time_point now);
  // The request is done with `server`'s connection (returned to the pool, closed, or never made).
  void release(std::size_t server);
  // A connect failure or timeout: `server` is skipped until `now` + retry, or + `at_least` when longer (a failed
  // health check: until the next check can bring it back). A single server is never skipped (there is nowhere
  // else to go: the device gets the failure itself).
  void mark_failed(std::size_t server, Clock::time_point now, Clock::duration at_least = {});
  // An active check answered: `server` is up again.
  void mark_up(std::size_t server);
  bool is_up(std::size_t server, Clock::time_point now) const;

  // The local address the next connection to `remote` binds to: the configured ones of its family in turn,
  // nothing when none is configured for that family.
  std::optional<boost::asio::ip::address> next_source(const boost::asio::ip::tcp::endpoint& remote);

  std::vector<UpstreamServerStatus> snapshot(Clock::time_point now) const;

private:
  std::vector<UpstreamServer> servers_;
  std::vector<std::shared_ptr<auth::kerberos::Delegator>> delegators_;
  std::chrono::seconds retry_;
  std::vector<boost::asio::ip::address> sources_;
  std::atomic<std::size_t> next_tie_{0};     // where the search for the least loaded server starts
  std::atomic<std::size_t> next_source_{0};
};

// /readyz with several servers: ready while any server is up (one server down is the farm working as meant).
ReadinessCheck upstream_servers_readiness(const UpstreamServers& servers);

// Writes easedge_upstream_server_{up,active_connections,requests_total,failures_total}{server="<url>"}.
void write_upstream_server_samples(SampleWriter& out, const UpstreamServers& servers);

// Binds `socket` (open, not connected) to `source` with IP_BIND_ADDRESS_NO_PORT: the port is picked at connect
// time per destination, so one source address serves ~28k connections to each server, not ~28k in all.
boost::system::error_code bind_source(boost::asio::ip::tcp::socket& socket, const boost::asio::ip::address& source);

}  // namespace easedge::proxy
