// Relay: the upload limit in its one place (a declared Content-Length while the head is read, a chunked body as
// it streams), a failed upstream connect retried on another server only before any byte went out, a request
// Exchange holds past the watch delay parking without its buffers and still getting its answer, and bytes an
// upstream sends past its answer never answering the next request. The device's side is a fake host over a
// plain loopback socket; the Exchange servers are loopback acceptors (tests/proxy/relay_fixture.h).
#include "proxy/relay.h"

#include "tests/proxy/relay_fixture.h"

#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace easedge::proxy {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using relay_testing::AnsweringServer;
using relay_testing::RelayUpstreamTest;

// ---- the upload limit --------------------------------------------------------------------------------------

config::LimitsConfig limits_of(std::uint64_t upload_bytes) {
  config::LimitsConfig limits;
  limits.upload_read_ahead_bytes = upload_bytes;
  return limits;
}

// Feeds `bytes` to a parser the way a connection does: the head first (eager off), then the body.
boost::beast::error_code parse(RequestParser& parser, std::string_view bytes) {
  boost::beast::error_code ec;
  char sink[64];
  while (!bytes.empty()) {
    if (parser.is_header_done()) {
      parser.get().body().data = sink;
      parser.get().body().size = sizeof sink;
    }
    auto used = parser.put(net::buffer(bytes.data(), bytes.size()), ec);
    bytes.remove_prefix(used);
    if (ec == http::error::need_buffer) ec = {};
    if (ec || parser.is_done() || used == 0) break;
  }
  return ec;
}

TEST(UploadLimitTest, RefusesADeclaredContentLengthOverTheLimitWithTheHead) {
  RequestParser parser;
  limit_upload(parser, limits_of(100));
  EXPECT_EQ(parse(parser, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n"), http::error::body_limit);
  EXPECT_FALSE(parser.is_header_done());  // before admission: nothing was decided about this request yet
  EXPECT_EQ(upload_refusal_detail(parser, limits_of(100)),
            "Content-Length 101 exceeds limits.upload_read_ahead_bytes 100");
}

TEST(UploadLimitTest, AcceptsABodyOfExactlyTheLimit) {
  RequestParser parser;
  limit_upload(parser, limits_of(100));
  auto request = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'a');
  EXPECT_FALSE(parse(parser, request));
  EXPECT_TRUE(parser.is_done());
}

TEST(UploadLimitTest, RefusesAChunkedBodyOnceItStreamsPastTheLimit) {
  RequestParser parser;
  limit_upload(parser, limits_of(100));
  auto request = "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "40\r\n" + std::string(64, 'a') + "\r\n40\r\n" + std::string(64, 'b') + "\r\n0\r\n\r\n";
  EXPECT_EQ(parse(parser, request), http::error::body_limit);
  EXPECT_TRUE(parser.is_header_done());
  EXPECT_EQ(upload_refusal_detail(parser, limits_of(100)), "chunked body exceeds limits.upload_read_ahead_bytes 100");
}

TEST_F(RelayUpstreamTest, AFailedConnectIsRetriedOnTheOtherServer) {
  // A port nothing listens on: the connect is refused before any byte of the request went out.
  tcp::endpoint refused;
  {
    tcp::acceptor closed(context_.io, loopback());
    refused = closed.local_endpoint();
  }
  run(refused);
  EXPECT_FALSE(connection_->refusal) << connection_->refusal_detail;
  EXPECT_TRUE(connection_->exchanged);
  EXPECT_EQ(second_connections_, 1);
  EXPECT_FALSE(upstreams_->is_up(0, std::chrono::steady_clock::now()));
  EXPECT_EQ(connection_->record().upstream_status, 200);
}

TEST_F(RelayUpstreamTest, AFailureAfterTheRequestWentOutIsNotRetried) {
  // The first server takes the request, then closes without an answer: it may have processed the request.
  tcp::acceptor first(context_.io, loopback());
  std::optional<tcp::socket> first_peer;
  net::streambuf first_head;
  first.async_accept([&](boost::system::error_code ec, tcp::socket peer) {
    if (ec) return;
    first_peer = std::move(peer);
    net::async_read_until(*first_peer, first_head, "\r\n\r\n",
                          [&](boost::system::error_code, std::size_t) { first_peer->close(); });
  });
  run(first.local_endpoint());
  ASSERT_TRUE(connection_->refusal);
  EXPECT_EQ(*connection_->refusal, Refusal::upstream_unreachable) << connection_->refusal_detail;
  EXPECT_GT(first_head.size(), 0u);  // the request did reach the first server
  EXPECT_EQ(second_connections_, 0);
  EXPECT_TRUE(upstreams_->is_up(0, std::chrono::steady_clock::now()));  // not a connect failure
}

TEST_F(RelayUpstreamTest, AHeldRequestParksAtTheWatchDelayAndStillGetsItsAnswer) {
  // The first server holds the request (a Ping): the watch delay passes, the relay gives back its read buffer and
  // waits for readiness instead; then the answer comes and reaches the device.
  tcp::acceptor first(context_.io, loopback());
  std::optional<tcp::socket> first_peer;
  net::streambuf first_head;
  net::steady_timer answer_later(context_.io);
  static constexpr std::string_view answer = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nPong";
  first.async_accept([&](boost::system::error_code ec, tcp::socket peer) {
    if (ec) return;
    first_peer = std::move(peer);
    net::async_read_until(*first_peer, first_head, "\r\n\r\n", [&](boost::system::error_code ec, std::size_t) {
      if (ec) return;
      connection_->fire(Phase::upstream_response);  // the 1 s mark: the device is watched, the read parks
      answer_later.expires_after(std::chrono::milliseconds(50));
      answer_later.async_wait([&](boost::system::error_code) {
        net::async_write(*first_peer, net::buffer(answer.data(), answer.size()),
                         [](boost::system::error_code, std::size_t) {});
      });
    });
  });
  run(first.local_endpoint());
  EXPECT_FALSE(connection_->refusal) << connection_->refusal_detail;
  EXPECT_TRUE(connection_->exchanged);
  EXPECT_EQ(connection_->record().upstream_status, 200);
  EXPECT_EQ(second_connections_, 0);
  std::string received(64, '\0');
  boost::system::error_code ec;
  device_.non_blocking(true);
  received.resize(device_.read_some(net::buffer(received), ec));
  EXPECT_EQ(received.substr(received.size() - 4), "Pong");
}


// ---- what an upstream sends beyond its answers is never an answer -------------------------------------------

TEST_F(RelayUpstreamTest, BytesAfterAnAnswerAreNeverTheNextRequestsAnswer) {
  // The first answer carries a forged second one in the same write: the connection is not reused, and the
  // device's next request gets the answer of a fresh connection, not the forged bytes left in the read buffer.
  AnsweringServer server(context_.io, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                                      "HTTP/1.1 404 Forged\r\nContent-Length: 0\r\n\r\n");
  run(server.endpoint());
  ASSERT_TRUE(connection_->exchanged) << connection_->refusal_detail;
  EXPECT_EQ(connection_->record().upstream_status, 200);
  forward_again();
  ASSERT_TRUE(connection_->exchanged) << connection_->refusal_detail;
  EXPECT_EQ(connection_->record().upstream_status, 200);
  EXPECT_EQ(server.connections + second_connections_, 2);
  EXPECT_EQ(device_received().find("Forged"), std::string::npos);
}


}  // namespace
}  // namespace easedge::proxy
