// PROXY protocol (v2 binary and v1 text) header parser: the client address an L4 load balancer saw.
//
// Untrusted bytes: every length is checked against what was received before it is used. The caller reads
// from the connection into a buffer, calls parse_proxy_header() until it stops answering need_more (at most
// proxy_header_max_bytes), then skips header.length bytes: the TLS handshake starts right after them.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace easedge::proxy {

// v1 lines are at most 107 bytes; v2 headers of L4 balancers carry a few TLVs (AWS, Azure, GCP stay well
// under 1 KiB). Larger headers are refused rather than buffered.
inline constexpr std::size_t proxy_header_max_bytes = 4096;

enum class ProxyHeaderStatus { complete, need_more, invalid };

struct ProxyHeader {
  std::size_t length = 0;  // bytes of the header, to be consumed before TLS
  int version = 0;         // 1 or 2
  // LOCAL (v2 health checks) or UNKNOWN / unsupported family: no client address; keep the connection's own.
  bool local = false;
  std::optional<boost::asio::ip::tcp::endpoint> source;       // the original client
  std::optional<boost::asio::ip::tcp::endpoint> destination;  // the address the client connected to
};

struct ProxyParseResult {
  ProxyHeaderStatus status = ProxyHeaderStatus::invalid;
  ProxyHeader header;  // complete only
  std::string error;   // invalid only: what was wrong, for the log
};

// Parses the start of `bytes`. need_more: a valid prefix, read more (unless proxy_header_max_bytes are
// already buffered: then it is invalid). Never reads past bytes.size().
ProxyParseResult parse_proxy_header(std::string_view bytes);

// One step of reading a header off a connection's socket before TLS, once it is readable: peeks, then
// consumes only bytes that belong to the header (OpenSSL reads the socket itself afterwards, so the TLS
// ClientHello must stay in the kernel's buffer). `consumed` holds the header's bytes taken so far, across
// steps. need_more: wait until the socket is readable again and step again. invalid with an empty error: the
// socket failed or closed.
ProxyParseResult read_proxy_header_step(boost::asio::ip::tcp::socket& socket, std::string& consumed);

}  // namespace easedge::proxy
