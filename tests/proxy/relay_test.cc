// Relay: the upload limit in its one place (a declared Content-Length while the head is read, a chunked body as
// it streams), a failed upstream connect retried on another server only before any byte went out, and a
// request Exchange holds past the watch delay parking without its buffers and still getting its answer. The
// device's side is a fake host over a plain loopback socket; the Exchange servers are loopback acceptors.
#include "proxy/relay.h"

#include "auth/tls_context.h"

#include "proxy/shared_state.h"
#include "proxy/thread_context.h"
#include "tests/support/test_pki.h"

#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace easedge::proxy {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

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

// ---- upstream servers: a failed connect moves on, a failure after the request went out does not ------------

// The device's side of the relay: records what the relay asked of it and stops the loop at the outcome.
class FakeConnection : public RelayHost, public std::enable_shared_from_this<FakeConnection> {
public:
  FakeConnection(ThreadContext& context, std::shared_ptr<const Runtime> runtime, tcp::socket device_side)
      : runtime_(std::move(runtime)), client_(std::move(device_side)),
        relay_(*this, context, runtime_, client_, client_buffer_), context_(context) {}

  std::shared_ptr<void> owner() override { return shared_from_this(); }
  void arm(std::chrono::steady_clock::duration, Phase phase) override { phases.push_back(phase); }
  bool timed_out() const override { return false; }
  bool closed() const override { return closed_; }
  bool device_keeps_alive() const override { return false; }
  void refuse(Refusal reason, std::string detail) override {
    refusal = reason;
    refusal_detail = std::move(detail);
    end();
  }
  void end_exchange(bool) override {
    exchanged = true;
    end();
  }
  void close() override {
    closed_ = true;
    relay_.close();
    end();
  }
  RequestRecord& record() override { return record_; }
  const std::string& request_id() override { return id_; }
  const std::string& client_address() const override { return address_; }

  // Forwards a GET whose head is parsed here (again for each exchange on this connection).
  void forward() {
    request_.emplace();
    request_->put(net::buffer(std::string_view("GET /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: mail\r\n\r\n")),
                  parse_error_);
    verdict_.upstream_timeout = std::chrono::seconds(5);
    exchanged = false;
    refusal.reset();
    record_ = {};
    relay_.forward(*request_, verdict_);
  }

  // The connection's timer firing in `phase` (the fake arms none).
  void fire(Phase phase) { relay_.on_timeout(phase); }

  std::optional<Refusal> refusal;
  std::string refusal_detail;
  bool exchanged = false;
  std::vector<Phase> phases;

private:
  void end() {
    relay_.release_server();
    context_.io.stop();
  }

  std::shared_ptr<const Runtime> runtime_;
  auth::TlsStream client_;
  ReadBuffer client_buffer_;
  Relay relay_;
  ThreadContext& context_;
  std::optional<RequestParser> request_;
  boost::beast::error_code parse_error_;
  AdmissionOutcome verdict_;
  RequestRecord record_;
  bool closed_ = false;
  std::string id_ = "test-request";
  std::string address_ = "127.0.0.1";
};

class RelayUpstreamTest : public ::testing::Test {
protected:
  RelayUpstreamTest() { accept_second(); }

  // Two servers: [0] at `first`, [1] at second_, which answers 200 and counts the connections it gets.
  // `before` sees the runtime before the request is forwarded (to pool connections under it).
  void run(tcp::endpoint first, const std::function<void(const std::shared_ptr<const Runtime>&)>& before = {}) {
    std::vector<UpstreamServer> servers(2);
    servers[0].config.url = "http://first";
    servers[0].endpoints = {first};
    servers[1].config.url = "http://second";
    servers[1].endpoints = {second_.local_endpoint()};
    auto runtime = std::make_shared<Runtime>();
    runtime->upstreams = std::make_shared<UpstreamServers>(std::move(servers), std::chrono::seconds(30),
                                                           std::vector<net::ip::address>{});
    upstreams_ = runtime->upstreams;
    // The device's end of a loopback connection is all the relay sees of the device (a GET sends no body).
    tcp::acceptor device_listener(context_.io, loopback());
    device_.connect(device_listener.local_endpoint());
    connection_ = std::make_shared<FakeConnection>(context_, runtime, device_listener.accept());
    if (before) before(runtime);
    connection_->forward();
    context_.io.run_for(std::chrono::seconds(5));
  }

  // The device's next request on the same connection.
  void forward_again() {
    connection_->forward();
    context_.io.restart();
    context_.io.run_for(std::chrono::seconds(5));
  }

  // What the device received so far.
  std::string device_received() {
    std::string received(4096, '\0');
    boost::system::error_code ec;
    device_.non_blocking(true);
    received.resize(device_.read_some(net::buffer(received), ec));
    return received;
  }

  static tcp::endpoint loopback() { return {net::ip::make_address("127.0.0.1"), 0}; }

  void accept_second() {
    second_.async_accept([this](boost::system::error_code ec, tcp::socket peer) {
      if (ec) return;
      ++second_connections_;
      second_peer_ = std::move(peer);
      net::async_read_until(*second_peer_, second_head_, "\r\n\r\n", [this](boost::system::error_code ec, std::size_t) {
        if (ec) return;
        static constexpr std::string_view ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        net::async_write(*second_peer_, net::buffer(ok.data(), ok.size()), [](boost::system::error_code, std::size_t) {});
      });
    });
  }

  SharedState shared_{std::make_shared<Runtime>()};
  ThreadContext context_{shared_, 0};
  std::shared_ptr<UpstreamServers> upstreams_;
  std::shared_ptr<FakeConnection> connection_;
  tcp::socket device_{context_.io};
  tcp::acceptor second_{context_.io, loopback()};
  std::optional<tcp::socket> second_peer_;
  net::streambuf second_head_;
  int second_connections_ = 0;
};

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

// A server on loopback that answers every request head on every connection with `answer`.
class AnsweringServer {
public:
  AnsweringServer(net::io_context& io, std::string answer) : acceptor_(io, {net::ip::make_address("127.0.0.1"), 0}),
                                                              answer_(std::move(answer)) {
    accept();
  }
  tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }
  int connections = 0;

private:
  struct Peer {
    explicit Peer(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    net::streambuf head;
  };
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      ++connections;
      answer(std::make_shared<Peer>(std::move(socket)));
      accept();
    });
  }
  void answer(std::shared_ptr<Peer> peer) {
    net::async_read_until(peer->socket, peer->head, "\r\n\r\n", [this, peer](boost::system::error_code ec, std::size_t n) {
      if (ec) return;
      peer->head.consume(n);
      net::async_write(peer->socket, net::buffer(answer_), [this, peer](boost::system::error_code ec, std::size_t) {
        if (!ec) answer(peer);
      });
    });
  }
  tcp::acceptor acceptor_;
  std::string answer_;
};

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

// A plain connection to `stale`'s peer, pooled as a connection to server 0 before the request is forwarded.
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
