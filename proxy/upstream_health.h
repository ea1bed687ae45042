// Active health checks (upstream.health_check): a GET on every Exchange server each interval, on a thread of its own.
#pragma once

#include "proxy/runtime.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <thread>

namespace easedge::proxy {

class HealthChecker {
public:
  // Checks the servers of `runtime` as its upstream.health_check says, until destroyed. A 2xx or 3xx answer
  // marks a server up; anything else (no connection, a timeout, another status) marks it failed.
  explicit HealthChecker(std::shared_ptr<const Runtime> runtime);
  // Stops the checks under way and joins the thread.
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

private:
  void run_round();
  void on_result(std::size_t server, bool healthy, const std::string& detail);

  std::shared_ptr<const Runtime> runtime_;
  boost::asio::io_context io_{1};
  boost::asio::steady_timer timer_{io_};
  std::thread thread_;
};

}  // namespace easedge::proxy
