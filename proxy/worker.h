// One I/O thread: its io_context, its share of the listening sockets (SO_REUSEPORT), its upstream pool,
// and the sessions it runs. Nothing here is shared between threads, so nothing here takes a lock.
#pragma once

#include "proxy/event_tally.h"
#include "proxy/shared_state.h"
#include "proxy/thread_context.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <vector>

namespace easedge::proxy {

class Worker {
public:
  Worker(SharedState& shared, std::size_t index);

  boost::asio::io_context& io() { return context_.io; }
  UpstreamPool& pool() { return context_.pool; }
  std::size_t index() const { return index_; }

  // Takes a bound, listening socket for this worker to accept on.
  void add_acceptor(boost::asio::ip::tcp::acceptor acceptor, bool proxy_protocol);
  void start();
  // Stops accepting and asks every session to finish its current request and close.
  void drain();
  // Closes every connection now (drain time is over).
  void stop();

private:
  void do_accept(std::size_t listener);
  void on_accept(std::size_t listener, boost::system::error_code ec, boost::asio::ip::tcp::socket socket);
  // Accepts again on `listener` after a pause (out of descriptors, or at the connection limit).
  void pause_accepting(std::size_t listener);
  void do_sweep();

  std::size_t index_;
  bool draining_ = false;
  ThreadContext context_;  // before the acceptors and timers: they are objects of its io_context
  std::vector<boost::asio::ip::tcp::acceptor> acceptors_;
  std::vector<bool> proxy_protocol_;  // per acceptor: a PROXY protocol header precedes TLS
  std::vector<boost::asio::steady_timer> accept_pauses_;  // per acceptor
  boost::asio::steady_timer sweep_timer_;
  EventTally failed_accepts_;
  EventTally closed_at_limit_;
};

}  // namespace easedge::proxy
