// Unit tests for TlsStream over loopback: the handshake, its rule that a result available at once completes
// inline (so callers must initiate in tail position) no more than a few calls deep, and the wait for a
// device's next request.
#include "auth/tls_stream.h"

#include "auth/tls_context.h"
#include "tests/support/test_pki.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace easedge::auth {
namespace {

class TlsStreamTest : public ::testing::Test {
protected:
  TlsStreamTest() {
    auto server = easedge::testing::make_ca(easedge::testing::common_name("localhost"));
    server_ctx_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_use_certificate(server_ctx_.get(), server.cert.get());
    SSL_CTX_use_PrivateKey(server_ctx_.get(), server.key.get());
    SSL_CTX_set_read_ahead(server_ctx_.get(), 1);  // as the proxy's contexts: records wait inside OpenSSL
    client_ctx_.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_verify(client_ctx_.get(), SSL_VERIFY_NONE, nullptr);

    net::ip::tcp::acceptor acceptor(io_, {net::ip::make_address("127.0.0.1"), 0});
    net::ip::tcp::socket client_socket(io_);
    client_socket.connect(acceptor.local_endpoint());
    auto server_socket = acceptor.accept();
    server_.emplace(std::move(server_socket), make_server_ssl(server_ctx_.get()));
    client_.emplace(std::move(client_socket), make_upstream_ssl(client_ctx_.get(), "localhost"));
  }

  void handshake() {
    error_code server_ec = net::error::would_block;
    error_code client_ec = net::error::would_block;
    server_->async_handshake([&](error_code ec, std::size_t) { server_ec = ec; });
    client_->async_handshake([&](error_code ec, std::size_t) { client_ec = ec; });
    io_.run();
    io_.restart();
    ASSERT_FALSE(server_ec) << server_ec.message();
    ASSERT_FALSE(client_ec) << client_ec.message();
  }

  // Runs the loop for 20 ms: the reactor takes the readiness events the kernel has for the sockets.
  void run_reactor_briefly() {
    net::steady_timer timer(io_, std::chrono::milliseconds(20));
    bool fired = false;
    timer.async_wait([&](error_code) { fired = true; });
    io_.restart();  // an operation that completed inline since the last run may have stopped the context
    while (!fired) io_.run_one();
    io_.restart();
  }

  // Runs the loop until `flag` is set, for at most two seconds.
  bool run_until(const bool& flag) {
    io_.restart();  // an operation that completed inline since the last run may have stopped the context
    for (int rounds = 0; !flag && rounds < 100; ++rounds) io_.run_for(std::chrono::milliseconds(20));
    io_.restart();
    return flag;
  }

  // Waits for the device's next request as the Session does: a wait that completes before `sent` is a spurious
  // wake-up (the Session's read finds nothing and waits again), so a test holds whether the wait has them or not.
  void wait_for_next_request(const bool& sent, bool& readable) {
    server_->async_wait_readable([this, &sent, &readable](error_code ec) {
      ASSERT_FALSE(ec) << ec.message();
      if (!sent) return wait_for_next_request(sent, readable);
      readable = true;
    });
  }

  // One read by the server, into a buffer larger than a test's record.
  std::string read_once() {
    std::array<char, 64> received{};
    std::size_t got = 0;
    server_->async_read_some(net::buffer(received), [&](error_code ec, std::size_t n) {
      ASSERT_FALSE(ec) << ec.message();
      got = n;
    });
    io_.restart();
    io_.run();
    io_.restart();
    return std::string(received.data(), got);
  }

  // One read by the server that is expected to fail: its error.
  error_code server_read_error() {
    std::array<char, 64> received{};
    error_code result;
    server_->async_read_some(net::buffer(received), [&](error_code ec, std::size_t) { result = ec; });
    io_.restart();
    io_.run();
    io_.restart();
    return result;
  }

  void expect_close_sends_nothing() {
    EXPECT_EQ(SSL_get_quiet_shutdown(server_->ssl()), 1);
    auto sent_before_close = server_->bytes_sent();
    server_->close();
    EXPECT_EQ(server_->bytes_sent(), sent_before_close);
  }

  // The client sends `text` as one record; the server reads it.
  void send_and_read(const std::string& text) {
    client_->async_write_some(net::buffer(text), [](error_code ec, std::size_t) { ASSERT_FALSE(ec); });
    ASSERT_EQ(read_once(), text);
  }

  net::io_context io_;
  OwnedSslCtx server_ctx_;
  OwnedSslCtx client_ctx_;
  std::optional<TlsStream> server_;
  std::optional<TlsStream> client_;
};

TEST_F(TlsStreamTest, CarriesBytesBothWays) {
  handshake();
  std::string hello = "hello over TLS";
  error_code write_ec = net::error::would_block;
  client_->async_write_some(net::buffer(hello), [&](error_code ec, std::size_t) { write_ec = ec; });
  EXPECT_EQ(read_once(), hello);
  EXPECT_FALSE(write_ec);
}

// As nginx does: once OpenSSL reported a fatal error (bytes that are no TLS, a peer that reset the connection),
// close() asks it for no shutdown, so nothing more is written to that peer.
TEST_F(TlsStreamTest, AfterAFatalErrorCloseSendsNothing) {
  handshake();
  ASSERT_EQ(SSL_get_quiet_shutdown(server_->ssl()), 0);
  std::string garbage = "GET / HTTP/1.1\r\n\r\n";  // SSL_ERROR_SSL
  net::write(client_->socket(), net::buffer(garbage));
  EXPECT_TRUE(server_read_error());
  expect_close_sends_nothing();
}

TEST_F(TlsStreamTest, AfterAResetCloseSendsNothing) {
  handshake();
  client_->socket().set_option(net::socket_base::linger(true, 0));  // SSL_ERROR_SYSCALL (ECONNRESET)
  client_->socket().close();
  EXPECT_EQ(server_read_error(), net::error::connection_reset);
  expect_close_sends_nothing();
}

TEST_F(TlsStreamTest, CountsEveryByteItHandsToTheKernel) {
  handshake();
  std::string hello = "hello over TLS";
  client_->async_write_some(net::buffer(hello), [](error_code ec, std::size_t) { ASSERT_FALSE(ec); });
  std::array<char, 64> received{};
  server_->async_read_some(net::buffer(received), [](error_code ec, std::size_t) { ASSERT_FALSE(ec); });
  io_.run();
  // The handshake and the record: all the server's socket received from the client.
  EXPECT_EQ(client_->bytes_sent(), BIO_number_read(SSL_get_rbio(server_->ssl())));
  EXPECT_GT(client_->bytes_sent(), hello.size());

  net::ip::tcp::acceptor acceptor(io_, {net::ip::make_address("127.0.0.1"), 0});
  net::ip::tcp::socket plain_socket(io_);
  plain_socket.connect(acceptor.local_endpoint());
  auto peer = acceptor.accept();
  TlsStream plain(std::move(plain_socket));
  plain.async_write_some(net::buffer(hello), [](error_code ec, std::size_t) { ASSERT_FALSE(ec); });
  io_.restart();
  io_.run();
  EXPECT_EQ(plain.bytes_sent(), hello.size());
  // More than the socket takes at once: the rest is written when it is writable, and counted too.
  std::string bulk(4 << 20, 'x');
  std::string drained(hello.size() + bulk.size(), '\0');
  net::async_write(plain, net::buffer(bulk), [](error_code ec, std::size_t) { ASSERT_FALSE(ec); });
  net::async_read(peer, net::buffer(drained), [](error_code ec, std::size_t) { ASSERT_FALSE(ec); });
  io_.restart();
  io_.run();
  EXPECT_EQ(plain.bytes_sent(), hello.size() + bulk.size());
}

TEST_F(TlsStreamTest, PeekSeesAPipelinedRequestThenAPeerThatLeft) {
  handshake();
  std::string request = "GET / HTTP/1.1";
  client_->async_write_some(net::buffer(request), [](error_code ec, std::size_t) { ASSERT_FALSE(ec); });
  io_.run();
  io_.restart();
  error_code ec;
  server_->socket().wait(net::ip::tcp::socket::wait_read, ec);
  EXPECT_EQ(server_->peek_peer(), TlsStream::PeerState::sent_data);
  EXPECT_EQ(server_->peek_peer(), TlsStream::PeerState::sent_data);  // peeking consumes nothing

  std::array<char, 64> received{};
  server_->async_read_some(net::buffer(received), [](error_code ec, std::size_t) { ASSERT_FALSE(ec); });
  io_.run();
  io_.restart();
  client_->close();
  server_->socket().wait(net::ip::tcp::socket::wait_read, ec);
  EXPECT_EQ(server_->peek_peer(), TlsStream::PeerState::gone);
}

// The wait for a device's next request (async_wait_readable) after a request was read whole: it completes when
// the device sends again, whether the bytes came before the wait started (taken by the reactor already, or not
// yet) or after, and when the device's end of stream came with its last record. The last case is why the wait
// costs a system call (bench/profile-notes.md: a wait that trusted a short read to mean "nothing left" missed
// such an end of stream until the idle timeout, and an L4 balancer's half-closed connections lingered).
TEST_F(TlsStreamTest, TheNextRequestWaitCompletesWhenTheDeviceSendsAgain) {
  handshake();
  send_and_read("first request");
  bool sent = false;
  bool readable = false;
  wait_for_next_request(sent, readable);
  run_reactor_briefly();  // nothing to read yet

  std::string next = "second request";
  client_->async_write_some(net::buffer(next), [](error_code ec, std::size_t) { ASSERT_FALSE(ec); });
  sent = true;
  EXPECT_TRUE(run_until(readable));
  EXPECT_EQ(read_once(), next);
}

TEST_F(TlsStreamTest, TheNextRequestWaitCompletesForBytesThatCameBeforeIt) {
  handshake();
  for (bool reactor_took_the_edge : {true, false}) {
    SCOPED_TRACE(reactor_took_the_edge ? "readiness taken by the reactor before the wait" : "not taken yet");
    send_and_read("request");
    std::string next = "pipelined request";
    client_->async_write_some(net::buffer(next), [](error_code ec, std::size_t) { ASSERT_FALSE(ec); });
    if (reactor_took_the_edge) run_reactor_briefly();
    bool sent = true;
    bool readable = false;
    wait_for_next_request(sent, readable);
    EXPECT_TRUE(run_until(readable));
    EXPECT_EQ(read_once(), next);
  }
}

TEST_F(TlsStreamTest, TheNextRequestWaitSeesAnEndOfStreamThatCameWithTheLastRecord) {
  handshake();
  send_and_read("first request");
  // The device's last request and its FIN (a half-close, as HAProxy passes it on) arrive while the server
  // waits, as on a keep-alive connection; the read that takes the record takes the FIN with it.
  bool sent = false;
  bool readable = false;
  wait_for_next_request(sent, readable);
  run_reactor_briefly();
  std::string last = "last request";
  client_->async_write_some(net::buffer(last), [](error_code ec, std::size_t) { ASSERT_FALSE(ec); });
  client_->socket().shutdown(net::ip::tcp::socket::shutdown_send);
  sent = true;
  ASSERT_TRUE(run_until(readable));
  EXPECT_EQ(read_once(), last);

  // No readiness event follows: the wait must find the end of stream itself.
  bool ended = false;
  server_->async_wait_readable([&](error_code) { ended = true; });
  ASSERT_TRUE(run_until(ended));
  std::array<char, 64> received{};
  error_code read_ec;
  server_->async_read_some(net::buffer(received), [&](error_code ec, std::size_t) { read_ec = ec; });
  io_.restart();
  io_.run();
  EXPECT_TRUE(read_ec) << "the end of stream, reported by the read";
}

TEST_F(TlsStreamTest, ReadyResultsCompleteInlineAtMostFourCallsDeep) {
  handshake();
  // Sixteen records, all sent before the first read: with read-ahead OpenSSL takes them from the socket in a
  // few reads, so most reads have their result at once.
  constexpr int records = 16;
  constexpr std::size_t record_bytes = 100;
  for (int i = 0; i < records; ++i) {
    std::string record(record_bytes, static_cast<char>('a' + i));
    client_->async_write_some(net::buffer(record), [&](error_code ec, std::size_t n) {
      ASSERT_FALSE(ec);
      ASSERT_EQ(n, record_bytes);
    });
    io_.run();
    io_.restart();
  }

  int initiating = 0;  // initiating calls on the stack: a handler that sees > 0 ran inline
  std::vector<int> seen;
  std::string payload;
  std::array<char, record_bytes> buffer{};
  std::function<void()> read_next = [&] {
    ++initiating;
    server_->async_read_some(net::buffer(buffer), [&](error_code ec, std::size_t n) {
      ASSERT_FALSE(ec) << ec.message();
      seen.push_back(initiating);
      payload.append(buffer.data(), n);
      if (payload.size() < records * record_bytes) read_next();  // tail position, as every caller must
    });
    --initiating;
  };
  read_next();
  io_.run();

  ASSERT_EQ(payload.size(), records * record_bytes);
  for (int i = 0; i < records; ++i) EXPECT_EQ(payload[i * record_bytes], 'a' + i);
  // Ready results complete inside their initiating call, one level deeper each time (1, 2, 3, 4); the next is
  // posted and seen from no initiating call (0), which unwinds the stack. A 0 before 4 is a read that had to
  // wait for the socket (OpenSSL read ahead only part of the records).
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(records)) << ::testing::PrintToString(seen);
  SCOPED_TRACE(::testing::PrintToString(seen));
  EXPECT_EQ(*std::max_element(seen.begin(), seen.end()), 4);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    int before = i == 0 ? 0 : seen[i - 1];
    if (before == 4) {
      EXPECT_EQ(seen[i], 0) << "read " << i;
    } else if (seen[i] != 0) {
      EXPECT_EQ(seen[i], before + 1) << "read " << i;
    }
  }
}

}  // namespace
}  // namespace easedge::auth
