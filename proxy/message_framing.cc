// Strict framing rules for heads crossing the edge in either direction.
#include "proxy/message_framing.h"

#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <charconv>

namespace easedge::proxy {

namespace {

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// RFC 3986 authority characters (reg-name, IP literal, port); anything else in Host is refused rather than
// passed to a server that may route or log by it.
bool is_authority(std::string_view host) {
  if (host.empty()) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || std::string_view("-._~!$&'()*+,;=:[]%").find(c) != std::string_view::npos;
  });
}

// Rules both directions share: chunked or content_length when the length fields say so, else none.
FramingVerdict length_fields_framing(const http::fields& head) {
  auto te_count = head.count(http::field::transfer_encoding);
  auto cl_count = head.count(http::field::content_length);
  if (te_count > 1) return ambiguous("more than one Transfer-Encoding field");
  if (cl_count > 1) return ambiguous("more than one Content-Length field");
  if (te_count == 1 && cl_count == 1) return ambiguous("both Transfer-Encoding and Content-Length");
  if (te_count == 1) {
    auto coding = trimmed(head[http::field::transfer_encoding]);
    if (!boost::beast::iequals(coding, "chunked"))
      return ambiguous("Transfer-Encoding '" + std::string(coding) + "' is not exactly chunked");
    return Framing{BodyFraming::chunked, 0};
  }
  if (cl_count == 1) {
    auto text = trimmed(head[http::field::content_length]);
    std::uint64_t length = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), length);
    bool digits_only = std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (text.empty() || !digits_only || ec != std::errc{} || end != text.data() + text.size())
      return ambiguous("Content-Length '" + std::string(text) + "' is not one decimal number");
    return Framing{BodyFraming::content_length, length};
  }
  return Framing{};
}

// A Connection field may only name headers that really are hop-by-hop: naming a framing field (or Host)
// asks a proxy that honours it to forward a message whose length or target the next hop reads differently.
boost::system::result<void, std::string> check_connection_tokens(const http::fields& head, bool request) {
  for (auto token : connection_tokens(head)) {
    if (same_header_name(token, "content-length") || same_header_name(token, "transfer-encoding") ||
        (request && same_header_name(token, "host")))
      return {boost::system::in_place_error, "Connection names " + canonical_header_name(token)};
  }
  return {};
}

}  // namespace

std::string canonical_header_name(std::string_view name) {
  std::string out(name);
  for (auto& c : out) c = canonical_header_byte(c);
  return out;
}

ConnectionTokens connection_tokens(const http::fields& head) {
  ConnectionTokens tokens;
  for (auto range = head.equal_range(http::field::connection); range.first != range.second; ++range.first) {
    std::string_view value = range.first->value();
    std::size_t start = 0;
    while (start <= value.size()) {
      auto end = std::min(value.find(',', start), value.size());
      auto token = trimmed(value.substr(start, end - start));
      if (!token.empty()) tokens.push_back(token);
      start = end + 1;
    }
  }
  return tokens;
}

FramingVerdict request_framing(const http::fields& head, unsigned version) {
  auto verdict = length_fields_framing(head);
  if (!verdict) return verdict;
  if (verdict->kind == BodyFraming::chunked && version < 11) return ambiguous("Transfer-Encoding in an HTTP/1.0 request");
  auto hosts = head.count(http::field::host);
  if (hosts != 1) return ambiguous(hosts == 0 ? "no Host field" : "more than one Host field");
  if (!is_authority(head[http::field::host])) return ambiguous("Host is not a valid authority");
  if (auto tokens = check_connection_tokens(head, true); !tokens) return ambiguous(tokens.error());
  return verdict;
}

FramingVerdict response_framing(const http::fields& head, unsigned status) {
  auto verdict = length_fields_framing(head);
  if (!verdict) return verdict;
  if (auto tokens = check_connection_tokens(head, false); !tokens) return ambiguous(tokens.error());
  if (status / 100 == 1 || status == 204 || status == 304) return Framing{};
  if (head.count(http::field::transfer_encoding) == 0 && head.count(http::field::content_length) == 0)
    return Framing{BodyFraming::until_close, 0};
  return verdict;
}

bool parser_agrees(const Framing& framing, bool parser_chunked, const boost::optional<std::uint64_t>& parser_length) {
  switch (framing.kind) {
    case BodyFraming::chunked: return parser_chunked && !parser_length;
    case BodyFraming::content_length: return !parser_chunked && parser_length && *parser_length == framing.length;
    case BodyFraming::until_close: return !parser_chunked && !parser_length;
    case BodyFraming::none: return true;  // no body is read whatever the parser noted (204, 304, 1xx)
  }
  return false;
}

}  // namespace easedge::proxy
