// The balancer: least connections among servers that are up, passive health, retries and source addresses.
#include "proxy/upstream_servers.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

namespace easedge::proxy {
namespace {

using Clock = UpstreamServers::Clock;
using boost::asio::ip::make_address;
using boost::asio::ip::tcp;

UpstreamServers make_servers(std::size_t count, std::vector<boost::asio::ip::address> sources = {}) {
  std::vector<UpstreamServer> servers;
  for (std::size_t i = 0; i < count; ++i) {
    UpstreamServer server;
    server.config.url = "http://exch" + std::to_string(i + 1) + ":80";
    server.endpoints = {tcp::endpoint(make_address("127.0.0.1"), static_cast<std::uint16_t>(8000 + i))};
    servers.push_back(std::move(server));
  }
  return UpstreamServers(std::move(servers), std::chrono::seconds(30), std::move(sources));
}

TEST(UpstreamServers, LeastConnectionsSpreadsAndCountsActive) {
  auto servers = make_servers(3);
  auto now = Clock::now();
  std::vector<std::size_t> chosen;
  for (int i = 0; i < 3; ++i) chosen.push_back(*servers.acquire(0, now));
  std::sort(chosen.begin(), chosen.end());
  EXPECT_EQ(chosen, (std::vector<std::size_t>{0, 1, 2}));  // one each before any gets a second
  servers.release(1);
  EXPECT_EQ(servers.acquire(0, now), 1u);  // the only one with fewer connections
  auto snapshot = servers.snapshot(now);
  EXPECT_EQ(snapshot[0].active, 1u);
  EXPECT_EQ(snapshot[1].active, 1u);
  EXPECT_EQ(snapshot[1].requests, 2u);
}

TEST(UpstreamServers, TiesAreTakenInTurn) {
  auto servers = make_servers(2);
  auto now = Clock::now();
  std::array<int, 2> counts{};
  for (int i = 0; i < 10; ++i) {
    auto server = *servers.acquire(0, now);
    ++counts[server];
    servers.release(server);  // always idle again: every choice is a tie
  }
  EXPECT_EQ(counts[0], 5);
  EXPECT_EQ(counts[1], 5);
}

TEST(UpstreamServers, FailedServerIsSkippedForRetrySeconds) {
  auto servers = make_servers(2);
  auto now = Clock::now();
  servers.mark_failed(0, now);
  EXPECT_FALSE(servers.is_up(0, now));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(servers.acquire(0, now + std::chrono::seconds(29)), 1u);
  EXPECT_TRUE(servers.is_up(0, now + std::chrono::seconds(30)));
  EXPECT_EQ(servers.acquire(0, now + std::chrono::seconds(30)), 0u);  // back, and the least loaded
  auto snapshot = servers.snapshot(now);
  EXPECT_FALSE(snapshot[0].up);
  EXPECT_EQ(snapshot[0].down_for, std::chrono::seconds(30));
  EXPECT_EQ(snapshot[0].failures, 1u);
}

TEST(UpstreamServers, ActiveCheckBringsAServerBack) {
  auto servers = make_servers(2);
  auto now = Clock::now();
  servers.mark_failed(1, now, std::chrono::seconds(45));  // a failed check: skipped until the next one at least
  EXPECT_FALSE(servers.is_up(1, now + std::chrono::seconds(40)));
  servers.mark_up(1);
  EXPECT_TRUE(servers.is_up(1, now));
}

TEST(UpstreamServers, RetryGoesToAServerNotTriedAndEndsWhenAllAreDown) {
  auto servers = make_servers(2);
  auto now = Clock::now();
  auto first = *servers.acquire(0, now);
  servers.mark_failed(first, now);
  servers.release(first);
  UpstreamServers::Tried tried = UpstreamServers::Tried{1} << first;
  auto second = servers.acquire(tried, now);
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(*second, first);
  servers.mark_failed(*second, now);
  servers.release(*second);
  tried |= UpstreamServers::Tried{1} << *second;
  EXPECT_FALSE(servers.acquire(tried, now).has_value());
  EXPECT_FALSE(servers.acquire(0, now).has_value());  // the next request: every server down
}

TEST(UpstreamServers, ASingleServerIsNeverSkipped) {
  auto servers = make_servers(1);
  auto now = Clock::now();
  servers.mark_failed(0, now);
  EXPECT_TRUE(servers.is_up(0, now));
  EXPECT_EQ(servers.acquire(0, now), 0u);
  EXPECT_EQ(servers.snapshot(now)[0].failures, 1u);
}

TEST(UpstreamServers, SourceAddressesInTurnByFamily) {
  auto servers = make_servers(1, {make_address("127.0.0.2"), make_address("::1"), make_address("127.0.0.3")});
  tcp::endpoint v4(make_address("127.0.0.1"), 80);
  tcp::endpoint v6(make_address("::1"), 80);
  std::vector<std::string> picked;
  for (int i = 0; i < 4; ++i) picked.push_back(servers.next_source(v4)->to_string());
  EXPECT_EQ(std::count(picked.begin(), picked.end(), "127.0.0.2"), 2);
  EXPECT_EQ(std::count(picked.begin(), picked.end(), "127.0.0.3"), 2);
  EXPECT_EQ(servers.next_source(v6)->to_string(), "::1");
  EXPECT_FALSE(make_servers(1).next_source(v4).has_value());
}

TEST(UpstreamServers, BindSourceGivesTheSocketThatAddress) {
  boost::asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(make_address("127.0.0.1"), 0));
  tcp::socket socket(io);
  socket.open(tcp::v4());
  ASSERT_FALSE(bind_source(socket, make_address("127.0.0.2")));
  socket.connect(acceptor.local_endpoint());
  auto peer = acceptor.accept();
  EXPECT_EQ(peer.remote_endpoint().address().to_string(), "127.0.0.2");
}

TEST(UpstreamServers, MetricsPerServer) {
  auto servers = make_servers(2);
  servers.mark_failed(1, Clock::now());
  std::string text;
  SampleWriter out(text);
  write_upstream_server_samples(out, servers);
  EXPECT_NE(text.find("easedge_upstream_server_up{server=\"http://exch1:80\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("easedge_upstream_server_up{server=\"http://exch2:80\"} 0"), std::string::npos) << text;
  EXPECT_NE(text.find("easedge_upstream_server_failures_total{server=\"http://exch2:80\"} 1"), std::string::npos);
}

TEST(UpstreamServers, ReadyWhileAnyServerIsUp) {
  auto servers = make_servers(2);
  auto now = Clock::now();
  servers.mark_failed(0, now);
  auto one_down = upstream_servers_readiness(servers);
  EXPECT_TRUE(one_down.ok);
  EXPECT_NE(one_down.detail.find("http://exch1:80"), std::string::npos) << one_down.detail;
  servers.mark_failed(1, now);
  auto all_down = upstream_servers_readiness(servers);
  EXPECT_FALSE(all_down.ok);
  EXPECT_NE(all_down.detail.find("every server is down"), std::string::npos) << all_down.detail;
}

}  // namespace
}  // namespace easedge::proxy
