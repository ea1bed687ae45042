// Accept loop and housekeeping of one I/O thread.
#include "proxy/worker.h"

#include "proxy/server.h"
#include "proxy/session.h"

#include <spdlog/spdlog.h>

#include <malloc.h>

namespace easedge::proxy {

namespace {
// How often idle upstream connections are checked for expiry, and free relay buffers that no request needed
// during a whole interval are given back.
constexpr auto sweep_interval = std::chrono::seconds(5);
// Free relay buffers kept per thread at most: enough for the requests one thread relays at once under load.
constexpr std::size_t max_free_relay_buffers = 64;
}  // namespace

Worker::Worker(Server& server, std::size_t index)
    : server_(server),
      index_(index),
      relay_buffers_(max_free_relay_buffers),
      pool_(server.runtime()->config.upstream.max_idle_connections, server.runtime()->config.timeouts.upstream_idle),
      sweep_timer_(io_),
      request_ids_(index) {}

void Worker::add_acceptor(boost::asio::ip::tcp::acceptor acceptor, bool proxy_protocol) {
  acceptors_.push_back(std::move(acceptor));
  proxy_protocol_.push_back(proxy_protocol);
}

void Worker::start() {
  for (std::size_t i = 0; i < acceptors_.size(); ++i) do_accept(i);
  do_sweep();
}

void Worker::do_accept(std::size_t listener) {
  acceptors_[listener].async_accept(
      io_, [this, listener](boost::system::error_code ec, boost::asio::ip::tcp::socket socket) {
        on_accept(listener, ec, std::move(socket));
      });
}

void Worker::on_accept(std::size_t listener, boost::system::error_code ec, boost::asio::ip::tcp::socket socket) {
  if (draining_ || ec == boost::asio::error::operation_aborted) return;
  if (ec) {
    // Typically EMFILE: say so, and keep accepting (the acceptor stays usable).
    spdlog::warn("accept failed: {}", ec.message());
  } else {
    auto runtime = server_.runtime();
    auto limit = runtime->config.limits.max_connections;
    if (limit != 0 && server_.connections().load(std::memory_order_relaxed) >= limit) {
      spdlog::warn("limits.max_connections ({}) reached: closing a new connection", limit);
      socket.close(ec);
    } else {
      std::make_shared<Session>(*this, std::move(socket), std::move(runtime), proxy_protocol_[listener])->start();
    }
  }
  do_accept(listener);
}

void Worker::do_sweep() {
  if (draining_) return;
  pool_.sweep(server_.runtime());
  // Relay buffers are smaller than glibc's mmap threshold: freed, they stay resident in the middle of the
  // heap until malloc_trim hands their pages back to the kernel.
  if (relay_buffers_.trim() > 0) ::malloc_trim(0);
  sweep_timer_.expires_after(sweep_interval);
  sweep_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) do_sweep();
  });
}

void Worker::drain() {
  draining_ = true;
  boost::system::error_code ignored;
  for (auto& acceptor : acceptors_) acceptor.close(ignored);
  sweep_timer_.cancel();
  // drain() may close sessions, which detach themselves: iterate over a copy.
  auto sessions = std::vector<Session*>(sessions_.begin(), sessions_.end());
  for (auto* session : sessions) session->drain();
  pool_.clear();
}

void Worker::stop() {
  drain();
  io_.stop();
}

}  // namespace easedge::proxy
