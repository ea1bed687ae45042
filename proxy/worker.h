// One I/O thread: its io_context, its share of the listening sockets (SO_REUSEPORT), its upstream pool,
// and the sessions it runs. Nothing here is shared between threads, so nothing here takes a lock.
#pragma once

#include "proxy/event_tally.h"
#include "proxy/relay_buffer_pool.h"
#include "proxy/request_id.h"
#include "proxy/runtime.h"
#include "proxy/upstream_pool.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unordered_set>
#include <vector>

namespace easedge::proxy {

class Server;
class Session;

class Worker {
public:
  Worker(Server& server, std::size_t index);

  boost::asio::io_context& io() { return io_; }
  UpstreamPool& pool() { return pool_; }
  Server& server() { return server_; }
  std::size_t index() const { return index_; }

  // Takes a bound, listening socket for this worker to accept on.
  void add_acceptor(boost::asio::ip::tcp::acceptor acceptor, bool proxy_protocol);
  void start();
  // Stops accepting and asks every session to finish its current request and close.
  void drain();
  // Closes every connection now (drain time is over).
  void stop();

  // Relay buffers are recycled per thread (see RelayBufferPool). A session holds one only while relaying.
  RelayBufferPool& relay_buffers() { return relay_buffers_; }
  // Ids for this thread's requests (see RequestIds).
  RequestIds& request_ids() { return request_ids_; }

  void attach(Session* session) { sessions_.insert(session); }
  void detach(Session* session) { sessions_.erase(session); }

private:
  void do_accept(std::size_t listener);
  void on_accept(std::size_t listener, boost::system::error_code ec, boost::asio::ip::tcp::socket socket);
  // Accepts again on `listener` after a pause (out of descriptors, or at the connection limit).
  void pause_accepting(std::size_t listener);
  void do_sweep();

  Server& server_;
  std::size_t index_;
  // Declared before io_: sessions still queued in io_ detach themselves from this set while io_ is destroyed.
  std::unordered_set<Session*> sessions_;
  bool draining_ = false;
  RelayBufferPool relay_buffers_;  // before io_ too: sessions destroyed with io_ give their buffers back
  boost::asio::io_context io_{1};
  std::vector<boost::asio::ip::tcp::acceptor> acceptors_;
  std::vector<bool> proxy_protocol_;  // per acceptor: a PROXY protocol header precedes TLS
  std::vector<boost::asio::steady_timer> accept_pauses_;  // per acceptor
  UpstreamPool pool_;
  boost::asio::steady_timer sweep_timer_;
  RequestIds request_ids_;
  EventTally failed_accepts_;
  EventTally closed_at_limit_;
};

}  // namespace easedge::proxy
