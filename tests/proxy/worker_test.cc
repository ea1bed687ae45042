// Worker: the accept loop's connection limit (closed before TLS, counted as overloaded) and drain (stops
// accepting), on loopback with the worker's own io_context.
#include "proxy/worker.h"

#include <boost/asio/connect.hpp>
#include <gtest/gtest.h>

#include <chrono>

namespace easedge::proxy {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class WorkerTest : public ::testing::Test {
protected:
  WorkerTest() {
    auto runtime = std::make_shared<Runtime>();
    runtime->config.limits.max_connections = 1;
    shared_ = std::make_unique<SharedState>(std::move(runtime));
    worker_ = std::make_unique<Worker>(*shared_, 0);
    tcp::acceptor acceptor(worker_->io(), tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    endpoint_ = acceptor.local_endpoint();
    worker_->add_acceptor(std::move(acceptor), false);
    worker_->start();
  }

  // Connects a device and reads: what the worker did with the connection.
  boost::system::error_code connect_and_read() {
    tcp::socket device(worker_->io());
    boost::system::error_code result = net::error::timed_out;
    char byte;
    auto done = [&](boost::system::error_code ec) {
      result = ec;
      worker_->io().stop();
    };
    device.async_connect(endpoint_, [&](boost::system::error_code ec) {
      if (ec) return done(ec);
      device.async_read_some(net::buffer(&byte, 1), [&](boost::system::error_code ec, std::size_t) { done(ec); });
    });
    worker_->io().restart();
    worker_->io().run_for(std::chrono::seconds(2));
    return result;
  }

  std::unique_ptr<SharedState> shared_;
  std::unique_ptr<Worker> worker_;
  tcp::endpoint endpoint_;
};

TEST_F(WorkerTest, AtTheConnectionLimitClosesBeforeTls) {
  shared_->connections() = 1;  // limits.max_connections is 1
  EXPECT_EQ(connect_and_read(), net::error::eof);
  EXPECT_EQ(shared_->refusal_counter(Refusal::overloaded).value(), 1u);
  shared_->connections() = 0;
}

TEST_F(WorkerTest, DrainStopsAccepting) {
  worker_->drain();
  EXPECT_EQ(connect_and_read(), net::error::connection_refused);
  EXPECT_EQ(shared_->refusal_counter(Refusal::overloaded).value(), 0u);
}

}  // namespace
}  // namespace easedge::proxy
