// PROXY protocol parsing per haproxy's proxy-protocol.txt (v1 section 2.1, v2 section 2.2).
#include "proxy/proxy_protocol.h"

#include <sys/socket.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace easedge::proxy {
namespace {

using boost::asio::ip::tcp;

constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::size_t v1_max_line = 107;  // including CRLF
constexpr std::size_t v2_fixed = 16;

ProxyParseResult fail(std::string error) { return {ProxyHeaderStatus::invalid, {}, std::move(error)}; }
ProxyParseResult need_more() { return {ProxyHeaderStatus::need_more, {}, {}}; }

std::uint16_t be16(std::string_view b, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<std::uint8_t>(b[at]) << 8) | static_cast<std::uint8_t>(b[at + 1]));
}

// `bytes` is a strict prefix of `full` (or equal): the sender may still be sending the header.
bool is_prefix(std::string_view bytes, std::string_view full) {
  return bytes.size() <= full.size() && full.substr(0, bytes.size()) == bytes;
}

ProxyParseResult parse_v2(std::string_view b) {
  if (b.size() < v2_fixed) return need_more();
  const auto ver_cmd = static_cast<std::uint8_t>(b[12]);
  const auto family = static_cast<std::uint8_t>(b[13]);
  const std::size_t length = v2_fixed + be16(b, 14);
  if ((ver_cmd >> 4) != 2) return fail("PROXY v2: unsupported version " + std::to_string(ver_cmd >> 4));
  const int command = ver_cmd & 0x0f;
  if (command > 1) return fail("PROXY v2: unknown command " + std::to_string(command));
  if (length > proxy_header_max_bytes)
    return fail("PROXY v2: header of " + std::to_string(length) + " bytes exceeds " +
                std::to_string(proxy_header_max_bytes));
  if (b.size() < length) return need_more();

  ProxyParseResult result{ProxyHeaderStatus::complete, {}, {}};
  result.header.length = length;
  result.header.version = 2;
  const auto address_family = family >> 4;
  const auto transport = family & 0x0f;
  // LOCAL: the balancer's own connection (health check); the address block, if any, is ignored.
  if (command == 0 || transport != 1 /* STREAM */ || (address_family != 1 && address_family != 2)) {
    if (command == 1 && address_family > 3) return fail("PROXY v2: unknown address family");
    if (command == 1 && transport > 2) return fail("PROXY v2: unknown transport");
    result.header.local = true;
    return result;
  }
  const std::size_t address_bytes = address_family == 1 ? 12 : 36;
  if (length - v2_fixed < address_bytes) return fail("PROXY v2: address block shorter than its family needs");
  const auto* a = b.data() + v2_fixed;
  if (address_family == 1) {
    boost::asio::ip::address_v4::bytes_type src{}, dst{};
    std::memcpy(src.data(), a, 4);
    std::memcpy(dst.data(), a + 4, 4);
    result.header.source = tcp::endpoint(boost::asio::ip::address_v4(src), be16(b, v2_fixed + 8));
    result.header.destination = tcp::endpoint(boost::asio::ip::address_v4(dst), be16(b, v2_fixed + 10));
  } else {
    boost::asio::ip::address_v6::bytes_type src{}, dst{};
    std::memcpy(src.data(), a, 16);
    std::memcpy(dst.data(), a + 16, 16);
    result.header.source = tcp::endpoint(boost::asio::ip::address_v6(src), be16(b, v2_fixed + 32));
    result.header.destination = tcp::endpoint(boost::asio::ip::address_v6(dst), be16(b, v2_fixed + 34));
  }
  // TLVs follow the addresses; easedge uses none of them, but they must tile the rest exactly.
  for (std::size_t at = v2_fixed + address_bytes; at < length;) {
    if (length - at < 3) return fail("PROXY v2: truncated TLV");
    const std::size_t tlv_length = be16(b, at + 1);
    if (length - at - 3 < tlv_length) return fail("PROXY v2: TLV longer than the header");
    at += 3 + tlv_length;
  }
  return result;
}

bool parse_port(std::string_view text, std::uint16_t& port) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

ProxyParseResult parse_v1(std::string_view b) {
  const auto end = b.substr(0, v1_max_line).find("\r\n");
  if (end == std::string_view::npos) {
    if (b.size() >= v1_max_line) return fail("PROXY v1: no CRLF within 107 bytes");
    if (b.find('\n') != std::string_view::npos) return fail("PROXY v1: bare LF");
    return need_more();
  }
  std::string_view line = b.substr(v1_prefix.size(), end - v1_prefix.size());
  ProxyParseResult result{ProxyHeaderStatus::complete, {}, {}};
  result.header.length = end + 2;
  result.header.version = 1;
  if (line == "UNKNOWN" || line.substr(0, 8) == "UNKNOWN ") {  // the rest of the line is to be ignored
    result.header.local = true;
    return result;
  }
  std::array<std::string_view, 5> fields;
  std::size_t count = 0;
  while (!line.empty()) {
    auto space = line.find(' ');
    auto field = line.substr(0, space);
    if (field.empty()) return fail("PROXY v1: empty field");
    if (count == fields.size()) return fail("PROXY v1: too many fields");
    fields[count++] = field;
    if (space == std::string_view::npos) break;
    line.remove_prefix(space + 1);
    if (line.empty()) return fail("PROXY v1: trailing space");
  }
  if (count != 5 || (fields[0] != "TCP4" && fields[0] != "TCP6")) return fail("PROXY v1: expected TCP4|TCP6 and 4 fields");
  boost::system::error_code ec_src, ec_dst;
  auto src = boost::asio::ip::make_address(std::string(fields[1]), ec_src);
  auto dst = boost::asio::ip::make_address(std::string(fields[2]), ec_dst);
  const bool v4 = fields[0] == "TCP4";
  if (ec_src || ec_dst || src.is_v4() != v4 || dst.is_v4() != v4) return fail("PROXY v1: bad address");
  std::uint16_t src_port = 0, dst_port = 0;
  if (!parse_port(fields[3], src_port) || !parse_port(fields[4], dst_port)) return fail("PROXY v1: bad port");
  result.header.source = tcp::endpoint(src, src_port);
  result.header.destination = tcp::endpoint(dst, dst_port);
  return result;
}

}  // namespace

ProxyParseResult parse_proxy_header(std::string_view bytes) {
  if (bytes.empty()) return need_more();
  ProxyParseResult result;
  if (is_prefix(bytes, v2_signature))
    return need_more();
  if (bytes.substr(0, v2_signature.size()) == v2_signature)
    result = parse_v2(bytes);
  else if (is_prefix(bytes, v1_prefix))
    return need_more();
  else if (bytes.substr(0, v1_prefix.size()) == v1_prefix)
    result = parse_v1(bytes);
  else
    return fail("no PROXY protocol header (proxy_protocol is on for this listener)");
  if (result.status == ProxyHeaderStatus::need_more && bytes.size() >= proxy_header_max_bytes)
    return fail("PROXY header longer than " + std::to_string(proxy_header_max_bytes) + " bytes");
  return result;
}

ProxyParseResult read_proxy_header_step(tcp::socket& socket, std::string& consumed) {
  std::array<char, proxy_header_max_bytes> peeked;
  auto fd = socket.native_handle();
  ssize_t n = ::recv(fd, peeked.data(), peeked.size() - consumed.size(), MSG_PEEK);
  if (n <= 0) return fail({});
  auto parsed = parse_proxy_header(consumed + std::string(peeked.data(), static_cast<std::size_t>(n)));
  if (parsed.status == ProxyHeaderStatus::invalid) return parsed;
  std::size_t take = parsed.status == ProxyHeaderStatus::complete ? parsed.header.length - consumed.size()
                                                                  : static_cast<std::size_t>(n);
  if (::recv(fd, peeked.data(), take, 0) != static_cast<ssize_t>(take)) return fail({});
  consumed.append(peeked.data(), take);
  return parsed;
}

}  // namespace easedge::proxy
