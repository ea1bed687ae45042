// Strict HTTP/1.1 framing at the edge: the one body length a parsed head declares, or why the head is
// ambiguous enough that the next hop could read it differently (RFC 9112 section 6, RFC 9110 section 7.6.1).
#pragma once

#include "proxy/head_arena.h"

#include <boost/container/small_vector.hpp>
#include <boost/optional/optional.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace easedge::proxy {

namespace http = boost::beast::http;

enum class BodyFraming : std::uint8_t {
  none,            // no body
  content_length,  // exactly `length` bytes
  chunked,         // Transfer-Encoding: chunked
  until_close,     // a response body that ends when the server closes
};

struct Framing {
  BodyFraming kind = BodyFraming::none;
  std::uint64_t length = 0;  // for content_length

  bool operator==(const Framing&) const = default;
};

// The framing a head declares, or what makes it ambiguous (for the log, never for the device).
using FramingVerdict = boost::system::result<Framing, std::string>;

// A verdict of ambiguity: `problem` says what the next hop could read differently.
inline FramingVerdict ambiguous(std::string problem) { return {boost::system::in_place_error, std::move(problem)}; }

// A device's request head. Refused: more than one Transfer-Encoding or Content-Length field, a
// Transfer-Encoding other than exactly "chunked", both framings, a Content-Length that is not one decimal
// number, Transfer-Encoding in HTTP/1.0, zero or several Host fields or a Host that is not an authority,
// and a Connection field naming Content-Length, Transfer-Encoding or Host.
FramingVerdict request_framing(const HeadFields& head, unsigned version);

// An upstream response head, by the same rules (no Host); a response without a length ends at close.
// 1xx, 204 and 304 responses have no body whatever their head says.
FramingVerdict response_framing(const HeadFields& head, unsigned status);

// Whether Beast's parser reads the body the way `framing` says: easedge forwards by its own reading, so
// the two must never differ (a defence in depth against a rule one of them has and the other lacks).
bool parser_agrees(const Framing& framing, bool parser_chunked, const boost::optional<std::uint64_t>& parser_length);

// A header name in the form every comparison uses: lower case, '_' as '-' (IIS and CGI-style upstreams
// read X_Forwarded_User as X-Forwarded-User).
std::string canonical_header_name(std::string_view name);

// One byte of a canonical header name; ASCII only (std::tolower would consult the locale per byte).
constexpr char canonical_header_byte(char c) {
  if (c == '_') return '-';
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Whether two header names are the same in canonical form, without building either. Inline: it runs for
// every field of every message against every name of the strip lists, and most differ in length.
inline bool same_header_name(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (canonical_header_byte(a[i]) != canonical_header_byte(b[i])) return false;
  return true;
}

// The value of the first `name` field, or empty: what head[name] gives, by a walk over the fields comparing
// the enum Beast's parser gave each name (operator[] walks Beast's tree with case-insensitive compares).
inline std::string_view field_value(const HeadFields& head, http::field name) {
  for (const auto& field : head)
    if (field.name() == name) return field.value();
  return {};
}

// The names listed in Connection fields (RFC 9110 7.6.1), trimmed, as sent: views into `head`, compared
// with same_header_name. Inline room for the usual one or two.
using ConnectionTokens = boost::container::small_vector<std::string_view, 4>;
ConnectionTokens connection_tokens(const HeadFields& head);

}  // namespace easedge::proxy
