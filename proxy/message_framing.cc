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

// Rules both directions share. Fills `verdict.framing` with chunked or content_length when the head says so.
void check_length_fields(const http::fields& head, FramingVerdict& verdict) {
  auto te_count = head.count(http::field::transfer_encoding);
  auto cl_count = head.count(http::field::content_length);
  if (te_count > 1) {
    verdict.problem = "more than one Transfer-Encoding field";
    return;
  }
  if (cl_count > 1) {
    verdict.problem = "more than one Content-Length field";
    return;
  }
  if (te_count == 1 && cl_count == 1) {
    verdict.problem = "both Transfer-Encoding and Content-Length";
    return;
  }
  if (te_count == 1) {
    auto coding = trimmed(head[http::field::transfer_encoding]);
    if (!boost::beast::iequals(coding, "chunked")) {
      verdict.problem = "Transfer-Encoding '" + std::string(coding) + "' is not exactly chunked";
      return;
    }
    verdict.framing.kind = BodyFraming::chunked;
    return;
  }
  if (cl_count == 1) {
    auto text = trimmed(head[http::field::content_length]);
    std::uint64_t length = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), length);
    bool digits_only = std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (text.empty() || !digits_only || ec != std::errc{} || end != text.data() + text.size()) {
      verdict.problem = "Content-Length '" + std::string(text) + "' is not one decimal number";
      return;
    }
    verdict.framing = {BodyFraming::content_length, length};
  }
}

// A Connection field may only name headers that really are hop-by-hop: naming a framing field (or Host)
// asks a proxy that honours it to forward a message whose length or target the next hop reads differently.
void check_connection_tokens(const http::fields& head, bool request, FramingVerdict& verdict) {
  for (auto token : connection_tokens(head)) {
    if (same_header_name(token, "content-length") || same_header_name(token, "transfer-encoding") ||
        (request && same_header_name(token, "host"))) {
      verdict.problem = "Connection names " + canonical_header_name(token);
      return;
    }
  }
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
  FramingVerdict verdict;
  check_length_fields(head, verdict);
  if (!verdict) return verdict;
  if (verdict.framing.kind == BodyFraming::chunked && version < 11) {
    verdict.problem = "Transfer-Encoding in an HTTP/1.0 request";
    return verdict;
  }
  auto hosts = head.count(http::field::host);
  if (hosts != 1) {
    verdict.problem = hosts == 0 ? "no Host field" : "more than one Host field";
    return verdict;
  }
  if (!is_authority(head[http::field::host])) {
    verdict.problem = "Host is not a valid authority";
    return verdict;
  }
  check_connection_tokens(head, true, verdict);
  return verdict;
}

FramingVerdict response_framing(const http::fields& head, unsigned status) {
  FramingVerdict verdict;
  check_length_fields(head, verdict);
  if (!verdict) return verdict;
  check_connection_tokens(head, false, verdict);
  if (!verdict) return verdict;
  if (status / 100 == 1 || status == 204 || status == 304)
    verdict.framing = {};
  else if (head.count(http::field::transfer_encoding) == 0 && head.count(http::field::content_length) == 0)
    verdict.framing.kind = BodyFraming::until_close;
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
