// The first checks on a device's request head, before any certificate or directory work: field count,
// framing, target and method. Pure: a head in, a verdict out, so every rule has a table test.
#pragma once

#include "proxy/message_framing.h"
#include "proxy/refusal.h"

#include <boost/beast/http/message.hpp>
#include <boost/optional/optional.hpp>
#include <boost/url/params_encoded_view.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace easedge::proxy {

struct RequestShape {
  std::optional<Refusal> refusal;  // set when the head is refused
  std::string detail;              // why, for the log (never for the device)
  Framing framing;                 // the body length easedge reads and forwards, when admitted
  bool expect_continue = false;    // the device waits for 100 Continue before its body
  // The target's query, validated with the rest of the target (for eas::parse_query): a view into the head.
  boost::urls::params_encoded_view query;
};

// `parser_chunked` and `parser_length` are what Beast's parser read from the same head: easedge's reading of
// the framing must agree with it. Refused: more fields than `max_fields` (431), ambiguous framing (400), a
// target not in origin form or with dot segments or encoded separators (400; "*" is 404), a path other
// than /Microsoft-Server-ActiveSync[/...] (404), a method ActiveSync does not use (405), an Expect other
// than 100-continue (400).
RequestShape check_request_shape(const RequestHead& head, bool parser_chunked,
                                 const boost::optional<std::uint64_t>& parser_length, std::size_t max_fields);

}  // namespace easedge::proxy
