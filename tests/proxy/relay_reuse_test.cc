// Relay: a reused upstream connection is checked by the first read of its answer, started before the request
// goes out: one the server closed while pooled, or that holds bytes nobody asked for, is never used and those
// bytes never reach the device; a live one answers, and a held request on it still parks. Plain and TLS.
#include "proxy/relay.h"

#include "auth/tls_context.h"
#include "tests/proxy/relay_fixture.h"
#include "tests/support/test_pki.h"

#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

namespace easedge::proxy {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using relay_testing::AnsweringServer;
using relay_testing::RelayUpstreamTest;

struct StaleConnection {
  explicit StaleConnection(net::io_context& io) : acceptor(io, {net::ip::make_address("127.0.0.1"), 0}), ours(io) {
    ours.connect(acceptor.local_endpoint());
    peer.emplace(acceptor.accept());
  }
  void pool(ThreadContext& context, const std::shared_ptr<const Runtime>& runtime) {
    context.pool.put(auth::TlsStream(std::move(ours)), runtime, 0);
  }
  // Everything the relay sent on it, once it closed it.
  std::string received() {
    std::string bytes;
    boost::system::error_code ec;
    net::read(*peer, net::dynamic_buffer(bytes), ec);
    return bytes;
  }
  tcp::acceptor acceptor;
  tcp::socket ours;
  std::optional<tcp::socket> peer;
};

TEST_F(RelayUpstreamTest, APooledConnectionTheServerClosedIsNotUsed) {
  AnsweringServer server(context_.io, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  StaleConnection stale(context_.io);
  stale.peer->shutdown(tcp::socket::shutdown_send);  // the server's FIN, while the connection sat in the pool
  std::shared_ptr<const Runtime> runtime;
  run(server.endpoint(), [&](const std::shared_ptr<const Runtime>& r) {
    runtime = r;
    stale.pool(context_, r);
  });
  ASSERT_TRUE(connection_->exchanged) << connection_->refusal_detail;
  EXPECT_EQ(connection_->record().upstream_status, 200);
  EXPECT_EQ(server.connections, 1);
  EXPECT_EQ(stale.received(), "") << "the request must not go out on a connection the server closed";
  // The server closes connections on its own: they are no longer pooled.
  tcp::socket another(context_.io);
  another.connect(server.endpoint());
  context_.pool.put(auth::TlsStream(std::move(another)), runtime, 0);
  EXPECT_FALSE(context_.pool.take(runtime, 0));
}

TEST_F(RelayUpstreamTest, BytesAPooledConnectionGotUnaskedAreNeitherRelayedNorAnAnswer) {
  AnsweringServer server(context_.io, "HTTP/1.1 200 OK\r\nX-Genuine: yes\r\nContent-Length: 0\r\n\r\n");
  StaleConnection stale(context_.io);
  net::write(*stale.peer, net::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")));
  run(server.endpoint(), [&](const std::shared_ptr<const Runtime>& runtime) { stale.pool(context_, runtime); });
  ASSERT_TRUE(connection_->exchanged) << connection_->refusal_detail;
  EXPECT_EQ(server.connections, 1);
  auto received = device_received();
  EXPECT_NE(received.find("X-Genuine: yes"), std::string::npos) << received;
  EXPECT_EQ(received.find("forged"), std::string::npos) << received;
  EXPECT_EQ(stale.received(), "") << "the request must not go out on a connection with bytes nobody asked for";
}

TEST_F(RelayUpstreamTest, AHeldRequestOnAReusedConnectionParksAndStillGetsItsAnswer) {
  // The reused connection's liveness read is the answer's read: it parks at the watch delay like any other.
  StaleConnection live(context_.io);
  net::streambuf head;
  net::steady_timer answer_later(context_.io);
  static constexpr std::string_view answer = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nPong";
  net::async_read_until(*live.peer, head, "\r\n\r\n", [&](boost::system::error_code ec, std::size_t) {
    if (ec) return;
    connection_->fire(Phase::upstream_response);
    answer_later.expires_after(std::chrono::milliseconds(50));
    answer_later.async_wait([&](boost::system::error_code) {
      net::async_write(*live.peer, net::buffer(answer.data(), answer.size()), [](boost::system::error_code, std::size_t) {});
    });
  });
  tcp::acceptor unused(context_.io, loopback());
  run(unused.local_endpoint(), [&](const std::shared_ptr<const Runtime>& runtime) { live.pool(context_, runtime); });
  EXPECT_FALSE(connection_->refusal) << connection_->refusal_detail;
  EXPECT_TRUE(connection_->exchanged);
  EXPECT_GT(head.size(), 0u);
  EXPECT_NE(device_received().find("Pong"), std::string::npos);
}

// ---- the same over TLS: the answer's first read is OpenSSL's --------------------------------------------

// A TLS connection to a TLS peer kept here (a self-signed Exchange), its handshake done, pooled as a connection
// to server 0.
class TlsPooledConnection {
public:
  explicit TlsPooledConnection(net::io_context& io) : io_(io) {
    auto exchange = easedge::testing::make_ca(easedge::testing::common_name("exchange"));
    server_ctx_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_use_certificate(server_ctx_.get(), exchange.cert.get());
    SSL_CTX_use_PrivateKey(server_ctx_.get(), exchange.key.get());
    SSL_CTX_set_num_tickets(server_ctx_.get(), 0);
    client_ctx_.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_verify(client_ctx_.get(), SSL_VERIFY_NONE, nullptr);
    tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
    tcp::socket ours(io);
    ours.connect(acceptor.local_endpoint());
    peer.emplace(acceptor.accept(), auth::make_server_ssl(server_ctx_.get()));
    ours_.emplace(std::move(ours), auth::make_upstream_ssl(client_ctx_.get(), "exchange"));
    error_code peer_ec = net::error::would_block, our_ec = net::error::would_block;
    peer->async_handshake([&](error_code ec, std::size_t) { peer_ec = ec; });
    ours_->async_handshake([&](error_code ec, std::size_t) { our_ec = ec; });
    // The fixture's listener keeps the loop busy: run until both ends are done.
    while ((peer_ec == net::error::would_block || our_ec == net::error::would_block) &&
           io.run_one_for(std::chrono::seconds(5)) > 0) {
    }
    EXPECT_FALSE(peer_ec) << peer_ec.message();
    EXPECT_FALSE(our_ec) << our_ec.message();
  }
  void pool(ThreadContext& context, const std::shared_ptr<const Runtime>& runtime) {
    context.pool.put(std::move(*ours_), runtime, 0);
  }
  // Has the peer send `bytes` now, unasked.
  void send(std::string_view bytes) {
    bool sent = false;
    net::async_write(*peer, net::buffer(bytes.data(), bytes.size()), [&](error_code ec, std::size_t) {
      EXPECT_FALSE(ec);
      sent = true;
    });
    while (!sent && io_.run_one_for(std::chrono::seconds(5)) > 0) {
    }
  }
  // The application bytes the peer received until the relay closed the connection.
  std::string received() {
    std::string bytes;
    bool ended = false;
    net::async_read(*peer, net::dynamic_buffer(bytes), [&](error_code, std::size_t) { ended = true; });
    io_.restart();
    while (!ended && io_.run_one_for(std::chrono::seconds(5)) > 0) {
    }
    EXPECT_TRUE(ended) << "the relay left the connection open";
    return bytes;
  }
  std::optional<auth::TlsStream> peer;

private:
  using error_code = boost::system::error_code;
  net::io_context& io_;
  auth::OwnedSslCtx server_ctx_;
  auth::OwnedSslCtx client_ctx_;
  std::optional<auth::TlsStream> ours_;
};

TEST_F(RelayUpstreamTest, APooledTlsConnectionTheServerClosedIsNotUsed) {
  AnsweringServer server(context_.io, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  TlsPooledConnection stale(context_.io);
  stale.peer->shutdown_send();  // close_notify and FIN while the connection sat in the pool
  run(server.endpoint(), [&](const std::shared_ptr<const Runtime>& runtime) { stale.pool(context_, runtime); });
  ASSERT_TRUE(connection_->exchanged) << connection_->refusal_detail;
  EXPECT_EQ(connection_->record().upstream_status, 200);
  EXPECT_EQ(server.connections, 1);
  EXPECT_EQ(stale.received(), "") << "the request must not go out on a connection the server closed";
}

TEST_F(RelayUpstreamTest, BytesAPooledTlsConnectionGotUnaskedAreNeitherRelayedNorAnAnswer) {
  AnsweringServer server(context_.io, "HTTP/1.1 200 OK\r\nX-Genuine: yes\r\nContent-Length: 0\r\n\r\n");
  TlsPooledConnection stale(context_.io);
  stale.send("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged");
  run(server.endpoint(), [&](const std::shared_ptr<const Runtime>& runtime) { stale.pool(context_, runtime); });
  ASSERT_TRUE(connection_->exchanged) << connection_->refusal_detail;
  EXPECT_EQ(server.connections, 1);
  auto received = device_received();
  EXPECT_NE(received.find("X-Genuine: yes"), std::string::npos) << received;
  EXPECT_EQ(received.find("forged"), std::string::npos) << received;
  EXPECT_EQ(stale.received(), "") << "the request must not go out on a connection with bytes nobody asked for";
}

TEST_F(RelayUpstreamTest, ARequestOnAReusedTlsConnectionGetsItsAnswer) {
  TlsPooledConnection live(context_.io);
  net::streambuf head;
  static constexpr std::string_view answer = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nPong";
  net::async_read_until(*live.peer, head, "\r\n\r\n", [&](boost::system::error_code ec, std::size_t) {
    if (ec) return;
    net::async_write(*live.peer, net::buffer(answer.data(), answer.size()), [](boost::system::error_code, std::size_t) {});
  });
  tcp::acceptor unused(context_.io, loopback());
  run(unused.local_endpoint(), [&](const std::shared_ptr<const Runtime>& runtime) { live.pool(context_, runtime); });
  ASSERT_TRUE(connection_->exchanged) << connection_->refusal_detail;
  EXPECT_EQ(connection_->record().upstream_status, 200);
  EXPECT_GT(head.size(), 0u);
  EXPECT_NE(device_received().find("Pong"), std::string::npos);
}

}  // namespace
}  // namespace easedge::proxy
