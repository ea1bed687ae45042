// Parses an ActiveSync request query (plain `Cmd=..&User=..` or MS-ASHTTP base64 form) without exceptions.
#pragma once

#include <boost/system/result.hpp>
#include <boost/url/params_encoded_view.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "eas/command.h"

namespace easedge::eas {

// Longest raw query accepted, in bytes. IIS in front of Exchange rejects queries longer than 2048 bytes by
// default (requestFiltering maxQueryString); twice that leaves room for escaping while keeping hostile input
// from costing more than a few KB of work. Checked before anything else.
inline constexpr std::size_t max_query_bytes = 4096;

// Longest decoded parameter value. The base64 form carries each value behind a one-byte length, so 255 is
// its hard limit; the plain form gets the same bound so both forms accept the same requests.
inline constexpr std::size_t max_value_bytes = 255;

// MS-ASHTTP 2.2.1.1.1.2: device-id = 1*32(ALPHA / DIGIT). A 16-byte binary GUID in the base64 form is
// rendered as 32 upper-case hex digits, which fits the same rule.
inline constexpr std::size_t max_device_id_chars = 32;

enum class QueryForm { none, plain, base64 };

// Everything the query says about an ActiveSync request, decoded.
struct EasRequest {
  QueryForm form = QueryForm::none;
  std::string protocol_version;             // "14.0"; base64 form only (plain: MS-ASProtocolVersion header)
  std::optional<Command> command;           // absent for OPTIONS/GET without a command
  std::optional<std::uint16_t> locale;      // LCID, base64 form only (e.g. 0x0409)
  std::string device_id;
  std::string device_type;
  std::optional<std::uint32_t> policy_key;  // base64 form only (plain: X-MS-PolicyKey header)
  std::string user;                         // as sent: alice, DOMAIN\alice or alice@domain
  std::string collection_id;
  std::string item_id;
  std::string long_id;
  std::string attachment_name;
  std::string occurrence;
  bool save_in_sent = false;
  bool accept_multipart = false;            // base64 Options flag (plain: MS-ASAcceptMultiPart header)

  bool operator==(const EasRequest&) const = default;
};

enum class QueryErrc {
  unsupported_method,   // not POST, OPTIONS or GET
  too_long,             // the query or a value exceeds its limit
  bad_encoding,         // not a valid RFC 3986 query / bad percent escape
  bad_base64,           // not canonical, padded base64
  truncated,            // a length byte points past the end of the data
  unknown_version,      // base64 protocol version not 121/140/141/160/161
  unknown_command,      // command code or Cmd= name not an ActiveSync command
  unknown_parameter,    // a tag or parameter name that ActiveSync does not define
  duplicate_parameter,  // a tag or parameter given twice (Exchange would merge them: refuse the ambiguity)
  missing_parameter,    // Cmd, DeviceId or DeviceType absent on a POST
  bad_value,            // empty, control characters, malformed DeviceId/PolicyKey/Options/SaveInSent
};

struct QueryError {
  QueryErrc code;
  std::string reason;  // for logs: what was wrong and where; never echoes more than a short prefix of input
};

// Either the decoded request or why the query was refused (the proxy answers 400 and forwards nothing).
using QueryResult = boost::system::result<EasRequest, QueryError>;

// Parses QUERY (the part of the request target after '?', without the '?') of a request with METHOD
// ("POST", "OPTIONS" or "GET", case-sensitive as HTTP methods are). The form is detected from the text:
// a '&' or a '=' that is not trailing base64 padding means the plain form. A POST needs a command,
// DeviceId and DeviceType; OPTIONS and GET may come without a query (form none).
QueryResult parse_query(std::string_view method, std::string_view query);

// The same for a query Boost.URL has already validated as part of a request target (url_view's
// encoded_params(), a view into the target): the same answer, without a second validation or a copy.
QueryResult parse_query(std::string_view method, boost::urls::params_encoded_view query);

std::string_view query_form_name(QueryForm form);  // "none" | "plain" | "base64"
std::string_view query_errc_name(QueryErrc code);  // the enumerator's name, e.g. "truncated"

}  // namespace easedge::eas
