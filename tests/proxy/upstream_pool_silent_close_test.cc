// The upstream pool hands back a live connection of its own runtime, and a replay is allowed only when the
// kernel proves the server never took a byte of the request (issue 17). Connections the server closed while
// pooled are the relay's first read to find (RelayUpstreamTest in tests/proxy/relay_test.cc).
#include "proxy/upstream_pool.h"

#include "proxy/runtime.h"
#include "tests/proxy/one_server_runtime.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <netinet/tcp.h>
#include <poll.h>

#include <string>
#include <thread>

namespace easedge::proxy {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// A loopback connection: `client` is easedge's end (plain TCP), `server` the backend's.
struct Pair {
  std::optional<auth::TlsStream> client;
  tcp::socket server;
};

class SilentCloseTest : public ::testing::Test {
protected:
  Pair connect() {
    tcp::socket client(io_), server(io_);
    client.connect(acceptor_.local_endpoint());
    acceptor_.accept(server);
    Pair pair{std::nullopt, std::move(server)};
    pair.client.emplace(std::move(client));
    return pair;
  }

  // Waits until the peer's FIN (or anything) is readable on `fd`: on a busy machine loopback delivery can be
  // deferred to ksoftirqd, so a fixed sleep is not enough.
  static void wait_readable(int fd) {
    pollfd readable{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&readable, 1, 5000), 1);
  }
  static void wait_readable(auth::TlsStream& stream) { wait_readable(stream.socket().native_handle()); }

  static void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(100)); }

  // Waits (up to 5 s) for what the kernel reports to come true: an acknowledgement or a reset is not always
  // processed at once on a busy machine.
  template <typename Condition>
  static bool eventually(Condition condition) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!condition() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return condition();
  }

  // Writes through the stream, as the relay does (the stream counts what it sent).
  void send(auth::TlsStream& stream, const std::string& bytes) {
    bool written = false;
    net::async_write(stream, net::buffer(bytes), [&](boost::system::error_code ec, std::size_t) {
      EXPECT_FALSE(ec);
      written = true;
    });
    io_.restart();
    while (!written && io_.run_one() != 0) {
    }
    ASSERT_TRUE(written);
  }

  // TCP_INFO's tcpi_bytes_acked (Linux 4.1), past the fields glibc's struct tcp_info has.
  static std::uint64_t kernel_bytes_acked(auth::TlsStream& stream) {
    struct {
      tcp_info base;
      std::uint64_t pacing_rate, max_pacing_rate, bytes_acked;
    } info{};
    socklen_t length = sizeof info;
    EXPECT_EQ(::getsockopt(stream.socket().native_handle(), SOL_TCP, TCP_INFO, &info, &length), 0);
    return info.bytes_acked;
  }

  net::io_context io_;
  tcp::acceptor acceptor_{io_, tcp::endpoint(net::ip::address_v4::loopback(), 0)};
  std::shared_ptr<const Runtime> runtime_ = one_server_runtime();
  UpstreamPool pool_{8, std::chrono::seconds(60)};
};

TEST_F(SilentCloseTest, HandsBackALiveConnection) {
  auto pair = connect();
  pool_.put(std::move(*pair.client), runtime_, 0);
  auto taken = pool_.take(runtime_, 0);
  ASSERT_TRUE(taken);
  EXPECT_TRUE(taken->is_open());
  EXPECT_FALSE(pool_.take(one_server_runtime(), 0)) << "a connection belongs to the runtime that made it";
}

TEST_F(SilentCloseTest, TheCountedMarkIsWhatTheKernelReportsOnceEverythingIsAcknowledged) {
  auto pair = connect();
  auto counted_is_acked = [&] { return delivery_mark(*pair.client).bytes_acked == kernel_bytes_acked(*pair.client); };
  EXPECT_TRUE(eventually(counted_is_acked)) << "a fresh connection";
  std::string request = "POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
  send(*pair.client, request);
  std::string got(request.size(), '\0');
  net::read(pair.server, net::buffer(got));
  EXPECT_TRUE(eventually(counted_is_acked)) << "after a request";
}

TEST_F(SilentCloseTest, ARequestThatHitAClosedSocketProvablyNeverReachedTheServer) {
  auto pair = connect();
  auto mark = delivery_mark(*pair.client);
  pair.server.close();  // closed before the request arrives: its kernel answers the data with a reset
  wait_readable(*pair.client);
  net::write(pair.client->socket(), net::buffer(std::string("POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n")));
  char byte;
  boost::system::error_code ec;
  pair.client->socket().read_some(net::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec) << "end of stream or reset";
  EXPECT_TRUE(eventually([&] { return never_reached_server(*pair.client, mark); })) << "once the reset is in";
}

TEST_F(SilentCloseTest, ARequestTheServerReadMayHaveBeenProcessed) {
  auto pair = connect();
  auto mark = delivery_mark(*pair.client);
  std::string request = "POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
  net::write(pair.client->socket(), net::buffer(request));
  std::string got(request.size(), '\0');
  net::read(pair.server, net::buffer(got));  // the server took it, then closed without answering
  pair.server.close();
  wait_readable(*pair.client);
  settle();
  EXPECT_FALSE(never_reached_server(*pair.client, mark));
}

TEST_F(SilentCloseTest, ARequestStillInFlightProvesNothing) {
  auto pair = connect();
  auto mark = delivery_mark(*pair.client);
  net::write(pair.client->socket(), net::buffer(std::string("GET / HTTP/1.1\r\n\r\n")));
  settle();  // acknowledged by the server's kernel, never answered
  EXPECT_FALSE(never_reached_server(*pair.client, mark));
  EXPECT_FALSE(never_reached_server(*pair.client, DeliveryMark{}));
}

}  // namespace
}  // namespace easedge::proxy
