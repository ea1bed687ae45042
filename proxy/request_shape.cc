// The request head checks, in the order a device hears about them.
#include "proxy/request_shape.h"

#include "eas/ascii.h"

#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>

#include <iterator>

namespace easedge::proxy {

namespace {

constexpr std::string_view activesync_path = "/Microsoft-Server-ActiveSync";

// The path ends where the head's exactly-sized target buffer ends (see eas::ascii_iequals).
bool is_activesync_path(std::string_view path) {
  if (path.size() < activesync_path.size()) return false;
  if (!eas::ascii_iequals(path.substr(0, activesync_path.size()), activesync_path)) return false;
  return path.size() == activesync_path.size() || path[activesync_path.size()] == '/';
}

// A byte no path segment may hold: '%' (nothing may be encoded) or a separator. One pass: find_first_of
// would call memchr for every byte of the segment.
bool has_forbidden_byte(std::string_view segment) {
  for (char c : segment)
    if (c == '%' || c == '/' || c == '\\') return true;
  return false;
}

bool method_allowed(http::verb method) {
  return method == http::verb::post || method == http::verb::options || method == http::verb::get;
}

RequestShape refused(Refusal refusal, std::string detail) {
  RequestShape shape;
  shape.refusal = refusal;
  shape.detail = std::move(detail);
  return shape;
}

}  // namespace

RequestShape check_request_shape(const RequestHead& head, bool parser_chunked,
                                 const boost::optional<std::uint64_t>& parser_length, std::size_t max_fields) {
  auto fields = static_cast<std::size_t>(std::distance(head.begin(), head.end()));
  if (fields > max_fields)
    return refused(Refusal::header_too_large, std::to_string(fields) + " header fields exceed limits.max_request_headers " +
                                                  std::to_string(max_fields));
  // easedge forwards the body by its own reading of the head; a head the next hop could read another way
  // (the way request smuggling starts) is refused, never repaired.
  auto framing = request_framing(head, head.version());
  if (!framing) return refused(Refusal::bad_request, "ambiguous framing: " + framing.error());
  if (!parser_agrees(*framing, parser_chunked, parser_length))
    return refused(Refusal::bad_request, "ambiguous framing: the parser reads the body length differently");

  // Parsed in place: Boost.URL 1.81's grammar rules keep to the view's end (parse_query's result does not,
  // but the query is taken from this parse, see eas::parse_query).
  auto target = boost::urls::parse_origin_form(head.target());
  if (!target)
    return refused(head.target() == "*" ? Refusal::not_found : Refusal::bad_request,
                   "request target is not in origin form");
  // Dot segments and encoded separators could walk out of /Microsoft-Server-ActiveSync once Exchange (IIS)
  // normalises the path: refuse them rather than forward a path that means something else upstream.
  // No segment may be percent-encoded at all, so each is its own decoded form (nothing to decode or copy).
  for (auto segment : target->encoded_segments()) {
    std::string_view text = segment;
    if (has_forbidden_byte(text) || text == "." || text == "..")
      return refused(Refusal::bad_request, "path segment '" + std::string(text) + "' is not allowed");
  }
  if (!is_activesync_path(target->encoded_path()))
    return refused(Refusal::not_found, "path is not /Microsoft-Server-ActiveSync");
  if (!method_allowed(head.method()))
    return refused(Refusal::method_not_allowed,
                   "method " + std::string(head.method_string()) + " is not used by ActiveSync");

  RequestShape shape;
  shape.framing = *framing;
  shape.query = target->encoded_params();
  auto expect = field_value(head, http::field::expect);
  if (!expect.empty()) {
    if (!boost::beast::iequals(expect, "100-continue"))
      return refused(Refusal::bad_request, "unsupported Expect: " + std::string(expect));
    shape.expect_continue = true;
  }
  return shape;
}

}  // namespace easedge::proxy
