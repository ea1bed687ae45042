// What the relay tests share: a fake device-side host that records the relay's outcome, a fixture with two
// upstream servers on loopback, and a server that answers every request with fixed bytes.
#pragma once

#include "proxy/relay.h"
#include "proxy/shared_state.h"
#include "proxy/thread_context.h"

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace easedge::proxy::relay_testing {

namespace net = boost::asio;
using tcp = net::ip::tcp;

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

}  // namespace easedge::proxy::relay_testing
