// An address and port as logs and pages show them: "192.0.2.1:443", "[2001:db8::1]:443".
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <string>

namespace easedge::proxy {

inline std::string endpoint_text(const boost::asio::ip::tcp::endpoint& endpoint) {
  const bool v6 = endpoint.address().is_v6();
  std::string text;
  if (v6) text += '[';
  text += endpoint.address().to_string();
  if (v6) text += ']';
  text += ':';
  text += std::to_string(endpoint.port());
  return text;
}

}  // namespace easedge::proxy
