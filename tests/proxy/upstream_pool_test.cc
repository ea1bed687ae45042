// UpstreamPool over loopback TCP: reuse order, the runtime a connection belongs to, the idle timeout, the
// size bound, and a server noted closing connections on its own.
#include "proxy/upstream_pool.h"

#include "proxy/runtime.h"
#include "tests/proxy/one_server_runtime.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <poll.h>

#include <chrono>
#include <thread>
#include <vector>

namespace easedge::proxy {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class UpstreamPoolTest : public ::testing::Test {
protected:
  // A connected pair: the pool's side (as an upstream connection) and the upstream's side, kept here.
  auth::TlsStream connection() {
    tcp::socket client(io_);
    client.connect(acceptor_.local_endpoint());
    upstream_sides_.push_back(acceptor_.accept());
    return auth::TlsStream(std::move(client));
  }

  static std::uint16_t port_of(auth::TlsStream& stream) { return stream.socket().local_endpoint().port(); }

  // Waits until what the upstream's side did (a FIN, bytes) is readable on the pool's side `fd`: on a busy
  // machine loopback delivery can be deferred to ksoftirqd, so a fixed sleep is not enough.
  static void wait_readable(int fd) {
    pollfd readable{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&readable, 1, 5000), 1);
  }

  net::io_context io_;
  tcp::acceptor acceptor_{io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)};
  std::vector<tcp::socket> upstream_sides_;
  std::shared_ptr<const Runtime> runtime_ = one_server_runtime();
};

TEST_F(UpstreamPoolTest, TakesTheMostRecentlyReturnedConnection) {
  UpstreamPool pool(4, std::chrono::seconds(60));
  auto first = connection();
  auto second = connection();
  auto second_port = port_of(second);
  pool.put(std::move(first), runtime_, 0);
  pool.put(std::move(second), runtime_, 0);
  auto taken = pool.take(runtime_, 0);
  ASSERT_TRUE(taken);
  EXPECT_EQ(port_of(*taken), second_port);
}

TEST_F(UpstreamPoolTest, EmptyPoolHasNothing) {
  UpstreamPool pool(4, std::chrono::seconds(60));
  EXPECT_FALSE(pool.take(runtime_, 0));
}

TEST_F(UpstreamPoolTest, ConnectionsOfAnotherRuntimeAreNotReused) {
  UpstreamPool pool(4, std::chrono::seconds(60));
  pool.put(connection(), runtime_, 0);
  EXPECT_FALSE(pool.take(one_server_runtime(), 0));
  EXPECT_FALSE(pool.take(runtime_, 0));  // closed and dropped on the way
}

TEST_F(UpstreamPoolTest, TakeAsksTheSocketNothing) {
  // Whether the server still has a connection is the relay's first read of the answer to find out
  // (RelayUpstreamTest in tests/proxy/relay_test.cc): take() hands back what it holds, closed by the server or not.
  UpstreamPool pool(4, std::chrono::seconds(60));
  auto pooled = connection();
  int fd = pooled.socket().native_handle();
  pool.put(std::move(pooled), runtime_, 0);
  upstream_sides_.back().close();
  wait_readable(fd);
  EXPECT_TRUE(pool.take(runtime_, 0));
}

TEST_F(UpstreamPoolTest, AServerNotedClosingConnectionsHasNoneOfThemPooled) {
  UpstreamPool pool(4, std::chrono::seconds(60));
  pool.note_closed_on_its_own(runtime_, 0);
  pool.put(connection(), runtime_, 0);
  EXPECT_FALSE(pool.take(runtime_, 0));
  pool.sweep(one_server_runtime());  // a new runtime (a reload): its servers start with a clean slate
  auto next = one_server_runtime();
  pool.put(connection(), next, 0);
  EXPECT_TRUE(pool.take(next, 0));
}

TEST_F(UpstreamPoolTest, FullPoolClosesTheOldest) {
  UpstreamPool pool(1, std::chrono::seconds(60));
  auto old_one = connection();
  auto new_one = connection();
  auto new_port = port_of(new_one);
  pool.put(std::move(old_one), runtime_, 0);
  pool.put(std::move(new_one), runtime_, 0);
  auto taken = pool.take(runtime_, 0);
  ASSERT_TRUE(taken);
  EXPECT_EQ(port_of(*taken), new_port);
  EXPECT_FALSE(pool.take(runtime_, 0));
}

TEST_F(UpstreamPoolTest, PoolWithoutRoomClosesWhatIsReturned) {
  UpstreamPool pool(0, std::chrono::seconds(60));
  pool.put(connection(), runtime_, 0);
  EXPECT_FALSE(pool.take(runtime_, 0));
}

TEST_F(UpstreamPoolTest, IdleTimeoutEndsReuse) {
  UpstreamPool pool(4, std::chrono::seconds(0));
  pool.put(connection(), runtime_, 0);
  EXPECT_FALSE(pool.take(runtime_, 0));
}

TEST_F(UpstreamPoolTest, SweepDropsConnectionsOfReplacedRuntimes) {
  UpstreamPool pool(4, std::chrono::seconds(60));
  pool.put(connection(), runtime_, 0);
  pool.sweep(one_server_runtime());
  EXPECT_FALSE(pool.take(runtime_, 0));
}

TEST_F(UpstreamPoolTest, SweepKeepsCurrentConnections) {
  UpstreamPool pool(4, std::chrono::seconds(60));
  pool.put(connection(), runtime_, 0);
  pool.sweep(runtime_);
  EXPECT_TRUE(pool.take(runtime_, 0));
}

TEST_F(UpstreamPoolTest, ClearClosesEverything) {
  UpstreamPool pool(4, std::chrono::seconds(60));
  pool.put(connection(), runtime_, 0);
  pool.clear();
  EXPECT_FALSE(pool.take(runtime_, 0));
  // The upstream sees the close.
  char byte;
  boost::system::error_code ec;
  upstream_sides_.back().read_some(net::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, net::error::eof);
}

}  // namespace
}  // namespace easedge::proxy
