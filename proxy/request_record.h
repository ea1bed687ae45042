// What the per-connection timer guards, and the facts of one request as they become known: shared by the
// connection (proxy/session.h) and the relay to Exchange (proxy/relay.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace easedge::proxy {

// What the single per-connection timer is guarding right now; decides what a timeout means.
enum class Phase : std::uint8_t {
  handshake,
  idle,
  request_header,
  authorizing,
  delegating,  // waiting for the KDC's token for the chosen server
  upstream_connect,
  request_body,
  upstream_response,
  response_body,
  refusing,
  lingering,
};

// Per-request facts, collected as they become known, logged once at the end.
struct RequestRecord {
  std::chrono::steady_clock::time_point started;
  std::string id;        // see Session::request_id(); empty until first used
  std::string method;
  std::string target;
  std::string user;      // the mapped account; empty ('-' in the log) until a certificate maps
  std::uint16_t status = 0;
  std::uint16_t substatus = 0;
  std::uint16_t upstream_status = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::string refusal;   // refusal name, when refused
  std::string detail;    // why, for the log
};

}  // namespace easedge::proxy
