#include "proxy/proxy_protocol.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <random>

namespace easedge::proxy {
namespace {

const std::string signature("\r\n\r\n\0\r\nQUIT\n", 12);

std::string v2(std::uint8_t ver_cmd, std::uint8_t family, const std::string& payload) {
  std::string h = signature;
  h += static_cast<char>(ver_cmd);
  h += static_cast<char>(family);
  h += static_cast<char>(payload.size() >> 8);
  h += static_cast<char>(payload.size() & 0xff);
  return h + payload;
}

std::string v2_inet(const std::string& tlvs = {}) {
  // 192.0.2.10:51000 -> 198.51.100.1:443
  return v2(0x21, 0x11, std::string("\xc0\x00\x02\x0a\xc6\x33\x64\x01\xc7\x38\x01\xbb", 12) + tlvs);
}

TEST(ProxyProtocol, V2Inet) {
  const std::string tls = "\x16\x03\x01";
  auto r = parse_proxy_header(v2_inet() + tls);
  ASSERT_EQ(r.status, ProxyHeaderStatus::complete) << r.error;
  EXPECT_EQ(r.header.version, 2);
  EXPECT_EQ(r.header.length, 28u);
  EXPECT_FALSE(r.header.local);
  EXPECT_EQ(r.header.source->address().to_string(), "192.0.2.10");
  EXPECT_EQ(r.header.source->port(), 51000);
  EXPECT_EQ(r.header.destination->address().to_string(), "198.51.100.1");
  EXPECT_EQ(r.header.destination->port(), 443);
}

TEST(ProxyProtocol, V2Inet6WithTlvs) {
  std::string addresses(36, '\0');
  addresses[0] = 0x20, addresses[1] = 0x01, addresses[2] = 0x0d, addresses[3] = static_cast<char>(0xb8), addresses[15] = 1;
  addresses[16] = 0x20, addresses[17] = 0x01, addresses[18] = 0x0d, addresses[19] = static_cast<char>(0xb8), addresses[31] = 2;
  addresses[32] = 0x12, addresses[33] = 0x34, addresses[34] = 0x01, addresses[35] = static_cast<char>(0xbb);
  const std::string tlvs = std::string("\x04\x00\x02" "ab", 5) + std::string("\x01\x00\x00", 3);  // NOOP, ALPN (empty)
  auto r = parse_proxy_header(v2(0x21, 0x21, addresses + tlvs));
  ASSERT_EQ(r.status, ProxyHeaderStatus::complete) << r.error;
  EXPECT_EQ(r.header.source->address().to_string(), "2001:db8::1");
  EXPECT_EQ(r.header.source->port(), 0x1234);
  EXPECT_EQ(r.header.destination->address().to_string(), "2001:db8::2");
}

TEST(ProxyProtocol, V2LocalAndUnspecHaveNoAddress) {
  for (const auto& header : {v2(0x20, 0x00, ""), v2(0x21, 0x00, ""), v2(0x20, 0x11, std::string(12, '\x01')),
                             v2(0x21, 0x31, std::string(216, '/'))}) {
    auto r = parse_proxy_header(header);
    ASSERT_EQ(r.status, ProxyHeaderStatus::complete) << r.error;
    EXPECT_TRUE(r.header.local);
    EXPECT_FALSE(r.header.source);
    EXPECT_EQ(r.header.length, header.size());
  }
}

TEST(ProxyProtocol, EveryPrefixNeedsMore) {
  const auto full = v2_inet(std::string("\x04\x00\x01x", 4));
  for (std::size_t n = 0; n < full.size(); ++n)
    EXPECT_EQ(parse_proxy_header(full.substr(0, n)).status, ProxyHeaderStatus::need_more) << n;
  const std::string line = "PROXY TCP4 192.0.2.1 192.0.2.2 1234 443\r\n";
  for (std::size_t n = 0; n < line.size(); ++n)
    EXPECT_EQ(parse_proxy_header(line.substr(0, n)).status, ProxyHeaderStatus::need_more) << n;
}

TEST(ProxyProtocol, V2HostileHeadersAreInvalid) {
  const std::vector<std::string> hostile = {
      v2(0x11, 0x11, std::string(12, '\0')),                      // version 1 in a v2 header
      v2(0x22, 0x11, std::string(12, '\0')),                      // unknown command
      v2(0x21, 0x11, std::string(11, '\0')),                      // address block too short
      v2(0x21, 0x21, std::string(35, '\0')),                      // v6 block too short
      v2(0x21, 0x41, std::string(12, '\0')),                      // unknown family
      v2(0x21, 0x13, std::string(12, '\0')),                      // unknown transport
      v2_inet(std::string("\x04\x00\x05" "ab", 5)),                  // TLV longer than header
      v2_inet(std::string("\x04\x00", 2)),                        // truncated TLV
      v2(0x21, 0x11, std::string(proxy_header_max_bytes, '\0')),  // declared length above the cap
  };
  for (const auto& h : hostile) {
    auto r = parse_proxy_header(h);
    EXPECT_EQ(r.status, ProxyHeaderStatus::invalid) << r.error;
    EXPECT_FALSE(r.error.empty());
  }
}

TEST(ProxyProtocol, V1) {
  auto r = parse_proxy_header("PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n\x16\x03");
  ASSERT_EQ(r.status, ProxyHeaderStatus::complete) << r.error;
  EXPECT_EQ(r.header.version, 1);
  EXPECT_EQ(r.header.length, 42u);
  EXPECT_EQ(r.header.source->address().to_string(), "192.0.2.1");
  EXPECT_EQ(r.header.source->port(), 56324);
  r = parse_proxy_header("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n");
  ASSERT_EQ(r.status, ProxyHeaderStatus::complete) << r.error;
  EXPECT_EQ(r.header.destination->port(), 65535);
  for (const char* unknown : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
    r = parse_proxy_header(unknown);
    ASSERT_EQ(r.status, ProxyHeaderStatus::complete) << unknown;
    EXPECT_TRUE(r.header.local);
  }
}

TEST(ProxyProtocol, V1HostileLinesAreInvalid) {
  for (const std::string& line : std::vector<std::string>{
           "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\n",           // bare LF
           "PROXY TCP4 192.0.2.1 192.0.2.2 56324 65536\r\n",       // port range
           "PROXY TCP4 192.0.2.1 192.0.2.2 056324 443\r\n",        // leading zero
           "PROXY TCP4 192.0.2.1 192.0.2.2 -1 443\r\n",
           "PROXY TCP4 192.0.2.1 192.0.2.2 +1 443\r\n",
           "PROXY TCP4 2001:db8::1 192.0.2.2 1 443\r\n",           // family mismatch
           "PROXY TCP6 192.0.2.1 192.0.2.2 1 443\r\n",
           "PROXY TCP4 192.0.2.1  192.0.2.2 1 443\r\n",            // double space
           "PROXY TCP4 192.0.2.1 192.0.2.2 1 443 \r\n",            // trailing space
           "PROXY TCP4 192.0.2.1 192.0.2.2 1 443 9\r\n",           // extra field
           "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",
           "PROXY UDP4 192.0.2.1 192.0.2.2 1 443\r\n",
           "PROXY TCP4 999.0.2.1 192.0.2.2 1 443\r\n",
           "PROXY " + std::string(200, 'A'),                       // no CRLF within 107 bytes
           "GET / HTTP/1.1\r\n",                                   // no header at all
           std::string("\x16\x03\x01\x00\x10", 5),                 // TLS straight away
       }) {
    auto r = parse_proxy_header(line);
    EXPECT_EQ(r.status, ProxyHeaderStatus::invalid) << line;
  }
}

TEST(ProxyProtocol, RandomBytesNeverOverrun) {
  std::mt19937 random(7);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = i % 2 ? signature : std::string("PROXY ");
    const auto extra = random() % 64;
    for (unsigned j = 0; j < extra; ++j) bytes += static_cast<char>(random() % (i % 3 ? 256 : 16));
    auto r = parse_proxy_header(bytes);
    if (r.status == ProxyHeaderStatus::complete) {
      EXPECT_LE(r.header.length, bytes.size());
    }
  }
}

// read_proxy_header_step on a loopback connection: the header is taken off the socket in pieces, and what
// follows it (the TLS ClientHello) stays in the kernel's buffer for OpenSSL.
TEST(ProxyProtocolRead, ConsumesTheHeaderAndNothingAfterIt) {
  namespace net = boost::asio;
  using tcp = net::ip::tcp;
  net::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  tcp::socket sender(io);
  sender.connect(acceptor.local_endpoint());
  tcp::socket socket = acceptor.accept();
  const std::string line = "PROXY TCP4 192.0.2.10 198.51.100.1 51000 443\r\n";

  std::string consumed;
  net::write(sender, net::buffer(line.substr(0, 10)));
  socket.wait(tcp::socket::wait_read);
  EXPECT_EQ(read_proxy_header_step(socket, consumed).status, ProxyHeaderStatus::need_more);
  EXPECT_EQ(consumed, line.substr(0, 10));

  net::write(sender, net::buffer(line.substr(10) + "HELLO"));
  // Both pieces may not be in the kernel's buffer yet: step until the header is whole.
  ProxyParseResult read;
  do {
    socket.wait(tcp::socket::wait_read);
    read = read_proxy_header_step(socket, consumed);
  } while (read.status == ProxyHeaderStatus::need_more);
  ASSERT_EQ(read.status, ProxyHeaderStatus::complete) << read.error;
  EXPECT_EQ(consumed, line);
  ASSERT_TRUE(read.header.source);
  EXPECT_EQ(read.header.source->port(), 51000);

  char rest[5];
  net::read(socket, net::buffer(rest));
  EXPECT_EQ(std::string(rest, sizeof rest), "HELLO");
}

TEST(ProxyProtocolRead, AClosedSocketIsInvalidWithoutAReason) {
  namespace net = boost::asio;
  using tcp = net::ip::tcp;
  net::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  tcp::socket sender(io);
  sender.connect(acceptor.local_endpoint());
  tcp::socket socket = acceptor.accept();
  sender.close();
  socket.wait(tcp::socket::wait_read);
  std::string consumed;
  auto read = read_proxy_header_step(socket, consumed);
  EXPECT_EQ(read.status, ProxyHeaderStatus::invalid);
  EXPECT_TRUE(read.error.empty());
}

}  // namespace
}  // namespace easedge::proxy
