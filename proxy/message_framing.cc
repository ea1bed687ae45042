// Strict framing rules for heads crossing the edge in either direction.
#include "proxy/message_framing.h"

#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <array>
#include <charconv>

namespace easedge::proxy {

namespace {

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// RFC 3986 authority characters (reg-name, IP literal, port): ASCII letters and digits and these.
constexpr std::string_view authority_punctuation = "-._~!$&'()*+,;=:[]%";

constexpr std::array<bool, 256> authority_bytes = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 256; ++c) table[c] = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  for (char c : authority_punctuation) table[static_cast<unsigned char>(c)] = true;
  return table;
}();

// Anything else in Host is refused rather than passed to a server that may route or log by it.
bool is_authority(std::string_view host) {
  if (host.empty()) return false;
  return std::all_of(host.begin(), host.end(), [](char c) { return authority_bytes[static_cast<unsigned char>(c)]; });
}

// What the framing rules read from a head, gathered in one pass over its fields. Beast's parser has already
// named each field (an enum): comparing it is one instruction, where count() or operator[] walks Beast's
// tree with case-insensitive string compares. Each value is the last of its kind: the rules only read one
// when its field occurs exactly once.
struct FramingFields {
  std::size_t transfer_encodings = 0;
  std::size_t content_lengths = 0;
  std::size_t hosts = 0;
  std::string_view transfer_encoding;
  std::string_view content_length;
  std::string_view host;
  ConnectionTokens connection;  // every Connection field's names, in order
};

// Adds the names one Connection field lists, trimmed, skipping empty list elements.
void append_connection_tokens(std::string_view value, ConnectionTokens& tokens) {
  std::size_t start = 0;
  while (start <= value.size()) {
    auto end = std::min(value.find(',', start), value.size());
    auto token = trimmed(value.substr(start, end - start));
    if (!token.empty()) tokens.push_back(token);
    start = end + 1;
  }
}

FramingFields framing_fields(const HeadFields& head) {
  FramingFields found;
  for (const auto& field : head) {
    switch (field.name()) {
      case http::field::transfer_encoding:
        ++found.transfer_encodings;
        found.transfer_encoding = field.value();
        break;
      case http::field::content_length:
        ++found.content_lengths;
        found.content_length = field.value();
        break;
      case http::field::host:
        ++found.hosts;
        found.host = field.value();
        break;
      case http::field::connection: append_connection_tokens(field.value(), found.connection); break;
      default: break;
    }
  }
  return found;
}

// Rules both directions share: chunked or content_length when the length fields say so, else none.
FramingVerdict length_fields_framing(const FramingFields& head) {
  auto te_count = head.transfer_encodings;
  auto cl_count = head.content_lengths;
  if (te_count > 1) return ambiguous("more than one Transfer-Encoding field");
  if (cl_count > 1) return ambiguous("more than one Content-Length field");
  if (te_count == 1 && cl_count == 1) return ambiguous("both Transfer-Encoding and Content-Length");
  if (te_count == 1) {
    auto coding = trimmed(head.transfer_encoding);
    if (!boost::beast::iequals(coding, "chunked"))
      return ambiguous("Transfer-Encoding '" + std::string(coding) + "' is not exactly chunked");
    return Framing{BodyFraming::chunked, 0};
  }
  if (cl_count == 1) {
    auto text = trimmed(head.content_length);
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
boost::system::result<void, std::string> check_connection_tokens(const ConnectionTokens& tokens, bool request) {
  for (auto token : tokens) {
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

ConnectionTokens connection_tokens(const HeadFields& head) {
  ConnectionTokens tokens;
  for (const auto& field : head)
    if (field.name() == http::field::connection) append_connection_tokens(field.value(), tokens);
  return tokens;
}

FramingVerdict request_framing(const HeadFields& head, unsigned version) {
  auto fields = framing_fields(head);
  auto verdict = length_fields_framing(fields);
  if (!verdict) return verdict;
  if (verdict->kind == BodyFraming::chunked && version < 11) return ambiguous("Transfer-Encoding in an HTTP/1.0 request");
  if (fields.hosts != 1) return ambiguous(fields.hosts == 0 ? "no Host field" : "more than one Host field");
  if (!is_authority(fields.host)) return ambiguous("Host is not a valid authority");
  if (auto tokens = check_connection_tokens(fields.connection, true); !tokens) return ambiguous(tokens.error());
  return verdict;
}

FramingVerdict response_framing(const HeadFields& head, unsigned status) {
  auto fields = framing_fields(head);
  auto verdict = length_fields_framing(fields);
  if (!verdict) return verdict;
  if (auto tokens = check_connection_tokens(fields.connection, false); !tokens) return ambiguous(tokens.error());
  if (status / 100 == 1 || status == 204 || status == 304) return Framing{};
  if (fields.transfer_encodings == 0 && fields.content_lengths == 0) return Framing{BodyFraming::until_close, 0};
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
