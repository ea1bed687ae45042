// Framing at the edge, table-driven: every smuggling shape from the review and its neighbours, read the way
// easedge reads a device's (or an upstream's) head: Beast's parser first, then request_framing/response_framing.
#include "proxy/message_framing.h"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <gtest/gtest.h>

namespace easedge::proxy {
namespace {

enum class Outcome { refused, forwarded };

struct Case {
  const char* name;
  std::string head_fields;  // between the start line and the empty line
  Outcome outcome;
  Framing framing = {};     // when forwarded
};

std::ostream& operator<<(std::ostream& out, const Case& c) { return out << c.name; }

// Parses a head as the session does; refused when the parser or the framing rules refuse it.
FramingVerdict read_request(const std::string& fields, const char* version = "1.1") {
  std::string text = std::string("POST /Microsoft-Server-ActiveSync?Cmd=Sync HTTP/") + version + "\r\n" + fields + "\r\n";
  RequestHeadParser<http::empty_body> parser;
  parser.eager(false);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(text), ec);
  if (ec || !parser.is_header_done()) return ambiguous("parser: " + ec.message());
  auto verdict = request_framing(parser.get(), parser.get().version());
  if (verdict && !parser_agrees(*verdict, parser.chunked(), parser.content_length()))
    verdict = ambiguous("parser disagrees");
  return verdict;
}

class RequestFraming : public ::testing::TestWithParam<Case> {};

TEST_P(RequestFraming, RefusesAmbiguityForwardsTheRest) {
  const auto& c = GetParam();
  auto verdict = read_request(c.head_fields);
  if (c.outcome == Outcome::refused) {
    EXPECT_FALSE(verdict) << "forwarded as kind " << (verdict ? static_cast<int>(verdict->kind) : -1);
  } else {
    ASSERT_TRUE(verdict) << verdict.error();
    EXPECT_EQ(*verdict, c.framing);
  }
}

const Framing none{BodyFraming::none, 0};
const Framing chunked{BodyFraming::chunked, 0};
Framing length(std::uint64_t n) { return {BodyFraming::content_length, n}; }

INSTANTIATE_TEST_SUITE_P(
    Smuggling, RequestFraming,
    ::testing::Values(
        Case{"plain_length", "Host: h\r\nContent-Length: 5\r\n", Outcome::forwarded, length(5)},
        Case{"plain_chunked", "Host: h\r\nTransfer-Encoding: chunked\r\n", Outcome::forwarded, chunked},
        Case{"chunked_any_case", "Host: h\r\nTransfer-Encoding: Chunked\r\n", Outcome::forwarded, chunked},
        Case{"no_body", "Host: h\r\n", Outcome::forwarded, none},
        Case{"zero_length", "Host: h\r\nContent-Length: 0\r\n", Outcome::forwarded, length(0)},
        Case{"connection_names_content_length", "Host: h\r\nConnection: Content-Length\r\nContent-Length: 5\r\n",
             Outcome::refused},
        Case{"connection_names_te", "Host: h\r\nConnection: keep-alive, transfer-encoding\r\nTransfer-Encoding: chunked\r\n",
             Outcome::refused},
        Case{"connection_names_host", "Host: h\r\nConnection: Host\r\n", Outcome::refused},
        Case{"connection_names_host_second_field", "Host: h\r\nConnection: close\r\nConnection: HOST\r\n",
             Outcome::refused},
        Case{"connection_hop_by_hop_is_fine", "Host: h\r\nConnection: keep-alive, X-Hop\r\nContent-Length: 1\r\n",
             Outcome::forwarded, length(1)},
        Case{"te_identity_then_chunked", "Host: h\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
             Outcome::refused},
        Case{"te_gzip_then_chunked", "Host: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
             Outcome::refused},
        Case{"te_empty_then_chunked", "Host: h\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n",
             Outcome::refused},
        Case{"te_chunked_twice", "Host: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
             Outcome::refused},
        Case{"te_list_gzip_chunked", "Host: h\r\nTransfer-Encoding: gzip, chunked\r\n", Outcome::refused},
        Case{"te_chunked_trailing_comma", "Host: h\r\nTransfer-Encoding: chunked,\r\n", Outcome::refused},
        Case{"te_chunked_with_parameter", "Host: h\r\nTransfer-Encoding: chunked;q=1\r\n", Outcome::refused},
        Case{"te_chunked_then_identity", "Host: h\r\nTransfer-Encoding: chunked, identity\r\n", Outcome::refused},
        Case{"te_identity_only", "Host: h\r\nTransfer-Encoding: identity\r\n", Outcome::refused},
        Case{"te_xchunked", "Host: h\r\nTransfer-Encoding: xchunked\r\n", Outcome::refused},
        Case{"cl_and_te", "Host: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n", Outcome::refused},
        Case{"te_and_cl", "Host: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n", Outcome::refused},
        Case{"cl_list_equal", "Host: h\r\nContent-Length: 5, 5\r\n", Outcome::refused},
        Case{"cl_list_different", "Host: h\r\nContent-Length: 5, 6\r\n", Outcome::refused},
        Case{"cl_twice_equal", "Host: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n", Outcome::refused},
        Case{"cl_twice_different", "Host: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n", Outcome::refused},
        Case{"cl_plus_sign", "Host: h\r\nContent-Length: +5\r\n", Outcome::refused},
        Case{"cl_inner_space", "Host: h\r\nContent-Length: 5 5\r\n", Outcome::refused},
        Case{"cl_hex", "Host: h\r\nContent-Length: 0x5\r\n", Outcome::refused},
        Case{"cl_negative", "Host: h\r\nContent-Length: -1\r\n", Outcome::refused},
        Case{"cl_overflow", "Host: h\r\nContent-Length: 99999999999999999999999\r\n", Outcome::refused},
        Case{"no_host", "Content-Length: 1\r\n", Outcome::refused},
        Case{"two_hosts", "Host: a\r\nHost: b\r\n", Outcome::refused},
        Case{"two_hosts_same", "Host: a\r\nHost: a\r\n", Outcome::refused},
        Case{"empty_host", "Host:\r\n", Outcome::refused},
        Case{"host_with_space", "Host: a b\r\n", Outcome::refused},
        Case{"host_with_slash", "Host: a/ecp\r\n", Outcome::refused},
        Case{"host_with_port_and_ipv6", "Host: [::1]:8443\r\n", Outcome::forwarded, none},
        Case{"host_with_latin1_letter", "Host: m\xe4il\r\n", Outcome::refused},
        Case{"host_with_angle_bracket", "Host: mail<1>\r\n", Outcome::refused},
        Case{"host_every_authority_byte", "Host: aZ09-._~!$&'()*+,;=:[]%\r\n", Outcome::forwarded, none},
        // Beast replaces an obs-fold by one space (RFC 9112 5.2 allows it): nothing folded is forwarded.
        Case{"obs_fold", "Host: h\r\nX-A: b\r\n  folded\r\n", Outcome::forwarded, none},
        Case{"space_before_colon", "Host: h\r\nContent-Length : 5\r\n", Outcome::refused},
        Case{"nul_in_value", std::string("Host: h\r\nX-A: a\0b\r\n", 20), Outcome::refused},
        Case{"bare_cr_in_value", "Host: h\r\nX-A: a\rb\r\n", Outcome::refused}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(RequestFraming, TransferEncodingInHttp10IsRefused) {
  EXPECT_FALSE(read_request("Host: h\r\nTransfer-Encoding: chunked\r\n", "1.0"));
  EXPECT_TRUE(read_request("Host: h\r\nContent-Length: 3\r\n", "1.0"));
}

FramingVerdict read_response(const std::string& status_line, const std::string& fields) {
  std::string text = status_line + "\r\n" + fields + "\r\n";
  ResponseHeadParser<http::empty_body> parser;
  parser.eager(false);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(text), ec);
  if (ec || !parser.is_header_done()) return ambiguous("parser: " + ec.message());
  auto verdict = response_framing(parser.get(), parser.get().result_int());
  if (verdict && !parser_agrees(*verdict, parser.chunked(), parser.content_length()))
    verdict = ambiguous("parser disagrees");
  return verdict;
}

TEST(ResponseFraming, SameRulesOnTheWayBack) {
  const char* ok = "HTTP/1.1 200 OK";
  EXPECT_EQ(*read_response(ok, "Content-Length: 7\r\n"), length(7));
  EXPECT_EQ(*read_response(ok, "Transfer-Encoding: chunked\r\n"), chunked);
  EXPECT_EQ(read_response(ok, "")->kind, BodyFraming::until_close);
  EXPECT_FALSE(read_response(ok, "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n"));
  EXPECT_FALSE(read_response(ok, "Connection: Content-Length\r\nContent-Length: 5\r\n"));
  EXPECT_FALSE(read_response(ok, "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"));
  EXPECT_FALSE(read_response(ok, "Content-Length: 5, 6\r\n"));
  EXPECT_FALSE(read_response(ok, "Content-Length: 5, 5\r\n"));
  EXPECT_FALSE(read_response(ok, "Transfer-Encoding: gzip\r\n"));
  // No Host on the way back; Connection: close and hop-by-hop names are ordinary.
  EXPECT_TRUE(read_response(ok, "Connection: close, X-Hop\r\nContent-Length: 0\r\n"));
}

TEST(ResponseFraming, BodilessStatusesHaveNoBodyWhateverTheHeadSays) {
  EXPECT_EQ(*read_response("HTTP/1.1 204 No Content", "Content-Length: 10\r\n"), none);
  EXPECT_EQ(*read_response("HTTP/1.1 304 Not Modified", "Transfer-Encoding: chunked\r\n"), none);
  EXPECT_FALSE(read_response("HTTP/1.1 304 Not Modified", "Content-Length: 1\r\nContent-Length: 2\r\n"));
}

TEST(ConnectionTokens, TrimmedAcrossFieldsAndSpaces) {
  HeadFields f;
  f.insert("Connection", " Keep-Alive ,X_Hop,, ");
  f.insert("Connection", "close");
  auto tokens = connection_tokens(f);
  EXPECT_EQ(std::vector<std::string_view>(tokens.begin(), tokens.end()),
            (std::vector<std::string_view>{"Keep-Alive", "X_Hop", "close"}));
}

TEST(HeaderNames, SameInAnyCaseOrUnderscoreSpelling) {
  EXPECT_TRUE(same_header_name("X_Forwarded_User", "x-forwarded-user"));
  EXPECT_TRUE(same_header_name("CONTENT-LENGTH", "Content_Length"));
  EXPECT_FALSE(same_header_name("Content-Length ", "content-length"));
  EXPECT_FALSE(same_header_name("Content-Lengtx", "content-length"));
  EXPECT_FALSE(same_header_name("", "x"));
  EXPECT_TRUE(same_header_name("", ""));
  // Only ASCII letters fold: a byte above 0x7f is never taken for a letter in any locale.
  EXPECT_FALSE(same_header_name("\xc4", "\xe4"));
  EXPECT_EQ(canonical_header_name("X_Forwarded-USER"), "x-forwarded-user");
}

}  // namespace
}  // namespace easedge::proxy
