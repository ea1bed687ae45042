// One I/O thread: its io_context, its share of the listening sockets (SO_REUSEPORT), its upstream pool,
// and the sessions it runs. Nothing here is shared between threads, so nothing here takes a lock.
#pragma once

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

  // Relay buffers are recycled per thread: allocating (and zeroing) 64 KiB per request, and giving it back to
  // the kernel after, cost more CPU than relaying a small Sync. A session holds one only while relaying.
  std::unique_ptr<char[]> take_relay_buffer(std::size_t size);
  void give_back_relay_buffer(std::unique_ptr<char[]> buffer, std::size_t size);

  void attach(Session* session) { sessions_.insert(session); }
  void detach(Session* session) { sessions_.erase(session); }

private:
  void do_accept(std::size_t listener);
  void on_accept(std::size_t listener, boost::system::error_code ec, boost::asio::ip::tcp::socket socket);
  void do_sweep();
  // Frees the free relay buffers that no request took since the last sweep; returns how many.
  std::size_t trim_relay_buffers();

  Server& server_;
  std::size_t index_;
  // Declared before io_: sessions still queued in io_ detach themselves from this set while io_ is destroyed.
  std::unordered_set<Session*> sessions_;
  bool draining_ = false;
  std::vector<std::unique_ptr<char[]>> free_relay_buffers_;
  std::size_t free_relay_buffer_size_ = 0;
  std::size_t free_relay_low_water_ = 0;  // fewest free buffers since the last sweep
  boost::asio::io_context io_{1};
  std::vector<boost::asio::ip::tcp::acceptor> acceptors_;
  std::vector<bool> proxy_protocol_;  // per acceptor: a PROXY protocol header precedes TLS
  UpstreamPool pool_;
  boost::asio::steady_timer sweep_timer_;
};

}  // namespace easedge::proxy
