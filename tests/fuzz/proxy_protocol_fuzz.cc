// libFuzzer target: the PROXY protocol parser on arbitrary bytes (it reads what an L4 balancer, or anyone
// who can reach a proxy_protocol listener, sends first).
#include "proxy/proxy_protocol.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto result = easedge::proxy::parse_proxy_header(bytes);
  if (result.status == easedge::proxy::ProxyHeaderStatus::complete) {
    if (result.header.length == 0 || result.header.length > size) std::abort();
    if (result.header.local == result.header.source.has_value()) std::abort();
    // The same header followed by more bytes must parse identically.
    auto prefix = easedge::proxy::parse_proxy_header(bytes.substr(0, result.header.length));
    if (prefix.status != result.status || prefix.header.length != result.header.length) std::abort();
  }
  return 0;
}
