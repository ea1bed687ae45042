// Accept loop and housekeeping of one I/O thread.
#include "proxy/worker.h"

#include "proxy/session.h"

#include <spdlog/spdlog.h>

namespace easedge::proxy {

namespace {
// How often idle upstream connections are checked for expiry, and free relay buffers that no request needed
// during a whole interval are given back.
constexpr auto sweep_interval = std::chrono::seconds(5);
// Out of descriptors, or at the connection limit: the listening socket stays readable, so accepting again at
// once would spin at 100 % CPU. Wait this long first; meanwhile new connections wait in the kernel's backlog
// (nginx turns accept events off the same way, HAProxy stops polling a full listener).
constexpr auto accept_pause = std::chrono::milliseconds(100);
// Failed accepts and connections closed at the limit are logged once per interval, with a count.
constexpr auto accept_log_interval = std::chrono::seconds(10);

// The process or the system is out of a resource an accept needs; it comes back only as connections end.
bool out_of_resources(const boost::system::error_code& ec) {
  return ec == boost::asio::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system ||
         ec == boost::asio::error::no_buffer_space || ec == boost::asio::error::no_memory;
}
}  // namespace

Worker::Worker(SharedState& shared, std::size_t index)
    : index_(index),
      context_(shared, index),
      sweep_timer_(context_.io),
      failed_accepts_(accept_log_interval),
      closed_at_limit_(accept_log_interval) {}

void Worker::add_acceptor(boost::asio::ip::tcp::acceptor acceptor, bool proxy_protocol) {
  acceptors_.push_back(std::move(acceptor));
  proxy_protocol_.push_back(proxy_protocol);
  accept_pauses_.emplace_back(context_.io);
}

void Worker::start() {
  for (std::size_t i = 0; i < acceptors_.size(); ++i) do_accept(i);
  do_sweep();
}

void Worker::do_accept(std::size_t listener) {
  acceptors_[listener].async_accept(
      context_.io, [this, listener](boost::system::error_code ec, boost::asio::ip::tcp::socket socket) {
        on_accept(listener, ec, std::move(socket));
      });
}

void Worker::on_accept(std::size_t listener, boost::system::error_code ec, boost::asio::ip::tcp::socket socket) {
  if (draining_ || ec == boost::asio::error::operation_aborted) return;
  auto now = EventTally::Clock::now();
  if (ec) {
    if (auto failed = failed_accepts_.add(now))
      spdlog::warn("accept failed: {} ({} failed accepts since the last report)", ec.message(), failed);
    // Other errors (ECONNABORTED, a firewall's EPERM) concern one connection, which the kernel has dropped.
    return out_of_resources(ec) ? pause_accepting(listener) : do_accept(listener);
  }
  auto& shared = context_.shared;
  auto runtime = shared.runtime();
  auto limit = shared.connection_limit(runtime->config);
  if (shared.connections().load(std::memory_order_relaxed) >= limit) {
    // Closed before TLS: a 503 would first cost a full handshake, the very resource the limit protects.
    socket.close(ec);
    shared.refusal_counter(Refusal::overloaded).inc();
    if (auto closed = closed_at_limit_.add(now))
      spdlog::warn("connection limit ({}) reached: {} new connections closed since the last report; accepting "
                   "pauses until connections end", limit, closed);
    return pause_accepting(listener);
  }
  std::make_shared<Session>(context_, std::move(socket), std::move(runtime), proxy_protocol_[listener])->start();
  do_accept(listener);
}

void Worker::pause_accepting(std::size_t listener) {
  auto& timer = accept_pauses_[listener];
  timer.expires_after(accept_pause);
  timer.async_wait([this, listener](boost::system::error_code ec) {
    if (!ec && !draining_) do_accept(listener);
  });
}

void Worker::do_sweep() {
  if (draining_) return;
  context_.pool.sweep(context_.shared.runtime());
  // Relay buffers are smaller than glibc's mmap threshold (and tcmalloc keeps what is freed): freed, they stay
  // resident until the allocator is asked to hand their pages back to the kernel.
  if (context_.relay_buffers.trim() > 0) release_free_heap_memory();
  sweep_timer_.expires_after(sweep_interval);
  sweep_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) do_sweep();
  });
}

void Worker::drain() {
  draining_ = true;
  boost::system::error_code ignored;
  for (auto& acceptor : acceptors_) acceptor.close(ignored);
  for (auto& timer : accept_pauses_) timer.cancel();
  sweep_timer_.cancel();
  // drain() may close sessions, which detach themselves: iterate over a copy.
  auto sessions = std::vector<Session*>(context_.sessions.begin(), context_.sessions.end());
  for (auto* session : sessions) session->drain();
  context_.pool.clear();
}

void Worker::stop() {
  drain();
  context_.io.stop();
}

}  // namespace easedge::proxy
