// Least-connections choice among the servers that are up, passive health, and source address rotation.
#include "proxy/upstream_servers.h"

#include <boost/asio/io_context.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <map>

namespace easedge::proxy {

namespace {

std::vector<boost::asio::ip::tcp::endpoint> resolve(const config::UpstreamServerConfig& server,
                                                    const config::Config& config, const std::string& key) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto results = resolver.resolve(server.host, std::to_string(server.port), ec);
  if (ec) throw config::ConfigError(config.source_file, key, "cannot resolve '" + server.host + "': " + ec.message());
  std::vector<boost::asio::ip::tcp::endpoint> endpoints;
  for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  return endpoints;
}

}  // namespace

UpstreamServers::UpstreamServers(std::vector<UpstreamServer> servers, std::chrono::seconds retry,
                                 std::vector<boost::asio::ip::address> sources)
    : servers_(std::move(servers)), retry_(retry), sources_(std::move(sources)) {
  for (auto& server : servers_)
    if (!server.state) server.state = std::make_shared<UpstreamServerState>();
  for (const auto& server : servers_)
    if (server.kerberos && std::find(delegators_.begin(), delegators_.end(), server.kerberos) == delegators_.end())
      delegators_.push_back(server.kerberos);
}

std::shared_ptr<UpstreamServers> UpstreamServers::build(const config::Config& config,
                                                        const UpstreamServers* previous) {
  const auto& upstream = config.upstream;
  std::map<std::string, std::shared_ptr<auth::kerberos::Delegator>> by_spn;
  std::vector<UpstreamServer> servers;
  for (std::size_t i = 0; i < upstream.servers.size(); ++i) {
    const auto& server = upstream.servers[i];
    auto key = upstream.servers.size() == 1 ? std::string("upstream.url") : "upstream.servers[" + std::to_string(i) + "]";
    UpstreamServer entry{server, resolve(server, config, key), nullptr, nullptr};
    if (upstream.auth == config::UpstreamAuth::kerberos) {
      auto& delegator = by_spn[server.service];
      if (!delegator) {
        auto kerberos = *upstream.kerberos;
        kerberos.service = server.service;
        try {
          delegator = std::make_shared<auth::kerberos::Delegator>(kerberos);
        } catch (const std::runtime_error& e) {
          throw config::ConfigError(config.source_file, "upstream.kerberos", e.what());
        }
      }
      entry.kerberos = delegator;
    }
    if (previous != nullptr)
      for (const auto& old : previous->servers_)
        if (old.config.url == server.url) entry.state = old.state;
    servers.push_back(std::move(entry));
  }
  std::vector<boost::asio::ip::address> sources;
  for (const auto& text : upstream.source_addresses) sources.push_back(boost::asio::ip::make_address(text));
  return std::make_shared<UpstreamServers>(std::move(servers), upstream.retry, std::move(sources));
}

std::optional<std::size_t> UpstreamServers::acquire(Tried tried, Clock::time_point now) {
  std::optional<std::size_t> best;
  std::size_t best_active = std::numeric_limits<std::size_t>::max();
  // With one server there is no choice to make: no tie to break, no count other threads write to read.
  const bool choose = servers_.size() > 1;
  std::size_t start = choose ? next_tie_.fetch_add(1, std::memory_order_relaxed) : 0;
  for (std::size_t k = 0; k < servers_.size(); ++k) {
    std::size_t i = (start + k) % servers_.size();
    if ((tried >> i) & 1 || !is_up(i, now)) continue;
    std::size_t active = choose ? servers_[i].state->active.sum() : 0;
    if (active < best_active) {
      best = i;
      best_active = active;
    }
  }
  if (best) {
    servers_[*best].state->active.add(1);
    servers_[*best].state->requests.add(1);
  }
  return best;
}

void UpstreamServers::release(std::size_t server) { servers_[server].state->active.sub(1); }

void UpstreamServers::mark_failed(std::size_t server, Clock::time_point now, Clock::duration at_least) {
  auto& state = *servers_[server].state;
  state.failures.fetch_add(1, std::memory_order_relaxed);
  auto until = now + std::max<Clock::duration>(retry_, at_least);
  if (servers_.size() > 1) state.down_until.store(until.time_since_epoch().count(), std::memory_order_relaxed);
}

void UpstreamServers::mark_up(std::size_t server) {
  servers_[server].state->down_until.store(0, std::memory_order_relaxed);
}

bool UpstreamServers::is_up(std::size_t server, Clock::time_point now) const {
  return servers_[server].state->down_until.load(std::memory_order_relaxed) <= now.time_since_epoch().count();
}

std::optional<boost::asio::ip::address> UpstreamServers::next_source(const boost::asio::ip::tcp::endpoint& remote) {
  if (sources_.empty()) return std::nullopt;
  std::size_t start = next_source_.fetch_add(1, std::memory_order_relaxed);
  for (std::size_t k = 0; k < sources_.size(); ++k) {
    const auto& source = sources_[(start + k) % sources_.size()];
    if (source.is_v6() == remote.address().is_v6()) return source;
  }
  return std::nullopt;
}

std::vector<UpstreamServerStatus> UpstreamServers::snapshot(Clock::time_point now) const {
  std::vector<UpstreamServerStatus> out;
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    const auto& state = *servers_[i].state;
    UpstreamServerStatus status;
    status.url = servers_[i].config.url;
    status.up = is_up(i, now);
    status.active = state.active.sum();
    status.requests = state.requests.sum();
    status.failures = state.failures.load(std::memory_order_relaxed);
    if (!status.up)
      status.down_for = std::chrono::ceil<std::chrono::seconds>(
          Clock::time_point(Clock::duration(state.down_until.load(std::memory_order_relaxed))) - now);
    out.push_back(std::move(status));
  }
  return out;
}

ReadinessCheck upstream_servers_readiness(const UpstreamServers& servers) {
  ReadinessCheck check{"upstream", false, ""};
  for (const auto& status : servers.snapshot(UpstreamServers::Clock::now())) {
    if (status.up) {
      check.ok = true;
      continue;
    }
    check.detail += (check.detail.empty() ? "down: " : ", ") + status.url + " (" +
                    std::to_string(status.down_for.count()) + " s more)";
  }
  if (!check.ok) check.detail = "every server is " + check.detail;
  return check;
}

void write_upstream_server_samples(SampleWriter& out, const UpstreamServers& servers) {
  auto statuses = servers.snapshot(UpstreamServers::Clock::now());
  auto series = [&](std::string_view name, std::string_view help, std::string_view type, auto value) {
    out.header(name, help, type);
    for (const auto& status : statuses) out.sample(name, {{"server", status.url}}, static_cast<double>(value(status)));
  };
  series("easedge_upstream_server_up", "1 when the Exchange server is taken for requests, 0 while it is skipped.",
         "gauge", [](const UpstreamServerStatus& s) { return s.up ? 1 : 0; });
  series("easedge_upstream_server_active_connections", "Connections to the server that requests use now.", "gauge",
         [](const UpstreamServerStatus& s) { return s.active; });
  series("easedge_upstream_server_requests_total",
         "Requests given to the server (a retry after a failed connect counts on each server tried).", "counter",
         [](const UpstreamServerStatus& s) { return s.requests; });
  series("easedge_upstream_server_failures_total", "Connect failures and timeouts (each one skips the server).",
         "counter", [](const UpstreamServerStatus& s) { return s.failures; });
}

boost::system::error_code bind_source(boost::asio::ip::tcp::socket& socket, const boost::asio::ip::address& source) {
  boost::system::error_code ec;
  int one = 1;
  if (::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0)
    return {errno, boost::system::system_category()};
  socket.bind(boost::asio::ip::tcp::endpoint(source, 0), ec);
  return ec;
}

}  // namespace easedge::proxy
