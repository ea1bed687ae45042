// A Runtime with one upstream server (index 0), for tests of what keeps connections to it.
#pragma once

#include "proxy/runtime.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace easedge::proxy {

inline std::shared_ptr<const Runtime> one_server_runtime(const std::string& url = "http://127.0.0.1:20000") {
  auto runtime = std::make_shared<Runtime>();
  UpstreamServer server;
  server.config.url = url;
  runtime->upstreams = std::make_shared<UpstreamServers>(std::vector<UpstreamServer>{std::move(server)},
                                                         std::chrono::seconds(30),
                                                         std::vector<boost::asio::ip::address>{});
  return runtime;
}

}  // namespace easedge::proxy
