// ActiveSync query parsing: plain form through Boost.URL, base64 form through OpenSSL.
#include "eas/query.h"

#include "eas/ascii.h"

#include <array>
#include <optional>
#include <span>

#include <boost/url/params_encoded_view.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/pct_string_view.hpp>
#include <openssl/evp.h>

namespace easedge::eas {
namespace {

namespace urls = boost::urls;

// Base64 tags of MS-ASHTTP 2.2.1.1.1.1.3; the plain form names the same parameters.
enum class Param : std::uint8_t {
  attachment_name = 0,
  collection_id = 1,
  item_id = 3,
  long_id = 4,
  occurrence = 6,
  options = 7,
  user = 8,
  // Plain-form only: the base64 form carries these in fixed fields or in Options.
  cmd = 32,
  device_id,
  device_type,
  save_in_sent,
};

struct ParamEntry {
  Param param;
  std::string_view name;
  bool base64_tag;  // may appear as a tag in the base64 form
  bool plain;       // may appear as a parameter in the plain form
};

constexpr std::array param_table{
    ParamEntry{Param::attachment_name, "AttachmentName", true, true},
    ParamEntry{Param::collection_id, "CollectionId", true, true},
    ParamEntry{Param::item_id, "ItemId", true, true},
    ParamEntry{Param::long_id, "LongId", true, true},
    ParamEntry{Param::occurrence, "Occurrence", true, true},
    ParamEntry{Param::options, "Options", true, false},
    ParamEntry{Param::user, "User", true, true},
    ParamEntry{Param::cmd, "Cmd", false, true},
    ParamEntry{Param::device_id, "DeviceId", false, true},
    ParamEntry{Param::device_type, "DeviceType", false, true},
    ParamEntry{Param::save_in_sent, "SaveInSent", false, true},
};

// Base64 Options flags (MS-ASHTTP 2.2.1.1.1.1.3). Other bits are undefined; they are ignored so a newer
// client still works (the query reaches Exchange unchanged, which decides what they mean).
constexpr std::uint8_t option_save_in_sent = 0x01;
constexpr std::uint8_t option_accept_multi_part = 0x02;

// The PolicyKey field is either absent (length 0) or a 32-bit little-endian integer.
constexpr std::size_t policy_key_bytes = 4;

// A binary device GUID as some base64-form clients send it; rendered as hex to fit the plain-form rule.
constexpr std::size_t binary_device_id_bytes = 16;

struct VersionEntry {
  std::uint8_t code;
  std::string_view text;
};
constexpr std::array version_table{VersionEntry{121, "12.1"}, VersionEntry{140, "14.0"}, VersionEntry{141, "14.1"},
                               VersionEntry{160, "16.0"}, VersionEntry{161, "16.1"}};

QueryError fail(QueryErrc code, std::string reason) { return QueryError{code, std::move(reason)}; }

const ParamEntry* param_by_name(std::string_view name) {
  for (const auto& entry : param_table)
    if (entry.plain && ascii_iequals(name, entry.name)) return &entry;
  return nullptr;
}

const ParamEntry* param_by_tag(std::uint8_t tag) {
  for (const auto& entry : param_table)
    if (entry.base64_tag && static_cast<std::uint8_t>(entry.param) == tag) return &entry;
  return nullptr;
}

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

bool is_alnum(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

bool all_alnum(std::string_view text) {
  for (unsigned char c : text)
    if (!is_alnum(c)) return false;
  return true;
}

// Shared value checks for both forms: non-empty, bounded, no control characters (which no ActiveSync value
// needs and which would only serve log or header injection).
QueryError value_too_long(std::string_view name) {
  return fail(QueryErrc::too_long, std::string(name) + " is longer than " + std::to_string(max_value_bytes) + " bytes");
}

std::optional<QueryError> check_value(std::string_view name, std::string_view value) {
  if (value.empty()) return fail(QueryErrc::bad_value, std::string(name) + " is empty");
  if (value.size() > max_value_bytes) return value_too_long(name);
  for (unsigned char c : value)
    if (is_control(c)) return fail(QueryErrc::bad_value, std::string(name) + " contains a control character");
  return std::nullopt;
}

std::optional<QueryError> check_device_id(std::string_view value) {
  if (value.empty() || value.size() > max_device_id_chars || !all_alnum(value))
    return fail(QueryErrc::bad_value, "DeviceId must be 1 to " + std::to_string(max_device_id_chars) + " letters or digits");
  return std::nullopt;
}

std::optional<QueryError> check_device_type(std::string_view value) {
  if (auto error = check_value("DeviceType", value)) return error;
  for (unsigned char c : value)  // device-type = 1*VCHAR
    if (c == ' ' || c >= 0x80) return fail(QueryErrc::bad_value, "DeviceType must be printable ASCII without spaces");
  return std::nullopt;
}

// Assigns a decoded parameter value to its field; shared by both forms after their own syntax checks.
// The base64 Options byte never comes here: its parser owns the flags.
std::optional<QueryError> assign(EasRequest& request, Param param, std::string_view name, std::string_view value) {
  switch (param) {
    case Param::cmd:
      if (auto command = command_from_name(value)) {
        request.command = command;
        return std::nullopt;
      }
      return fail(QueryErrc::unknown_command, "Cmd names no ActiveSync command");
    case Param::device_id:
      if (auto error = check_device_id(value)) return error;
      request.device_id = value;
      return std::nullopt;
    case Param::device_type:
      if (auto error = check_device_type(value)) return error;
      request.device_type = value;
      return std::nullopt;
    case Param::save_in_sent:
      if (value == "T" || value == "F") {
        request.save_in_sent = value == "T";
        return std::nullopt;
      }
      return fail(QueryErrc::bad_value, "SaveInSent must be T or F");
    default:
      break;
  }
  if (auto error = check_value(name, value)) return error;
  switch (param) {
    case Param::attachment_name: request.attachment_name = value; break;
    case Param::collection_id: request.collection_id = value; break;
    case Param::item_id: request.item_id = value; break;
    case Param::long_id: request.long_id = value; break;
    case Param::occurrence: request.occurrence = value; break;
    case Param::user: request.user = value; break;
    default: break;
  }
  return std::nullopt;
}

// Remembers which parameters were seen, to refuse duplicates.
class SeenSet {
public:
  bool insert(Param param) {
    auto bit = std::uint64_t{1} << static_cast<unsigned>(param);
    if (bits_ & bit) return false;
    bits_ |= bit;
    return true;
  }

private:
  std::uint64_t bits_ = 0;
};

// ASP.NET (and thus Exchange) decodes '+' in the query as a space; decode the same way.
const urls::encoding_opts plus_as_space(true);

// A parameter name or value as ASP.NET reads it: the bytes as sent when there is nothing to decode (no
// escape, no '+'), else decoded into `buffer`.
std::string_view decoded_text(urls::pct_string_view value, std::string& buffer) {
  if (value.decoded_size() == value.size() && value.find('+') == std::string_view::npos) return value;
  buffer = value.decode(plus_as_space);
  return buffer;
}

QueryResult parse_plain(std::string_view method, urls::params_encoded_view params) {
  EasRequest request;
  request.form = QueryForm::plain;
  SeenSet seen;
  std::string buffer;
  for (auto p : params) {
    if (p.key.empty() && !p.has_value) continue;  // "a=1&&b=2" or a trailing '&': nothing there, as in ASP.NET
    const ParamEntry* entry = param_by_name(decoded_text(p.key, buffer));
    if (!entry) return fail(QueryErrc::unknown_parameter, "unknown query parameter");
    if (!seen.insert(entry->param))
      return fail(QueryErrc::duplicate_parameter, std::string(entry->name) + " is given more than once");
    if (!p.has_value) return fail(QueryErrc::bad_value, std::string(entry->name) + " has no value");
    if (p.value.decoded_size() > max_value_bytes) return value_too_long(entry->name);  // before decoding it
    if (auto error = assign(request, entry->param, entry->name, decoded_text(p.value, buffer))) return *error;
  }
  if (method == "POST") {
    if (!request.command) return fail(QueryErrc::missing_parameter, "a POST needs Cmd");
    if (request.device_id.empty()) return fail(QueryErrc::missing_parameter, "a POST needs DeviceId");
    if (request.device_type.empty()) return fail(QueryErrc::missing_parameter, "a POST needs DeviceType");
  }
  return request;
}

// Reads the fixed fields and tags of the decoded base64 bytes; every read is bounds-checked.
class ByteReader {
public:
  explicit ByteReader(std::span<const unsigned char> data) : data_(data) {}

  bool at_end() const { return offset_ == data_.size(); }
  std::size_t offset() const { return offset_; }

  bool byte(std::uint8_t& out) {
    if (offset_ >= data_.size()) return false;
    out = data_[offset_++];
    return true;
  }

  bool bytes(std::size_t count, std::string_view& out) {
    if (count > data_.size() - offset_) return false;
    out = std::string_view(reinterpret_cast<const char*>(data_.data() + offset_), count);
    offset_ += count;
    return true;
  }

  // A one-byte length followed by that many bytes.
  bool counted(std::string_view& out) {
    std::uint8_t length = 0;
    return byte(length) && bytes(length, out);
  }

private:
  std::span<const unsigned char> data_;
  std::size_t offset_ = 0;
};

QueryError truncated(std::string_view field, std::size_t offset) {
  return fail(QueryErrc::truncated, std::string(field) + " at byte " + std::to_string(offset) + " runs past the end");
}

bool is_base64_char(unsigned char c) { return is_alnum(c) || c == '+' || c == '/'; }

// Canonical RFC 4648 base64: a multiple of four characters, padding only at the end. OpenSSL's decoder
// also skips whitespace, which a query never contains: check before handing the text over.
bool is_canonical_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return false;
  std::size_t padding = 0;
  if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  for (std::size_t i = 0; i < text.size() - padding; ++i)
    if (!is_base64_char(static_cast<unsigned char>(text[i]))) return false;
  return true;
}

std::string hex_upper(std::string_view bytes) {
  static constexpr char hex_digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(hex_digits[c >> 4]);
    out.push_back(hex_digits[c & 0x0f]);
  }
  return out;
}

QueryResult parse_base64_bytes(std::span<const unsigned char> data) {
  ByteReader reader(data);
  EasRequest request;
  request.form = QueryForm::base64;

  std::uint8_t version = 0;
  if (!reader.byte(version)) return truncated("protocol version", reader.offset());
  for (const auto& entry : version_table)
    if (entry.code == version) request.protocol_version = entry.text;
  if (request.protocol_version.empty())
    return fail(QueryErrc::unknown_version, "protocol version " + std::to_string(version) + " is not supported");

  std::uint8_t code = 0;
  if (!reader.byte(code)) return truncated("command code", reader.offset());
  request.command = command_from_code(code);
  if (!request.command) return fail(QueryErrc::unknown_command, "command code " + std::to_string(code) + " is unknown");

  std::string_view locale;
  if (!reader.bytes(2, locale)) return truncated("locale", reader.offset());
  request.locale = static_cast<std::uint16_t>(static_cast<unsigned char>(locale[0]) |
                                              static_cast<unsigned char>(locale[1]) << 8);

  std::string_view device_id;
  if (!reader.counted(device_id)) return truncated("DeviceId", reader.offset());
  if (device_id.size() == binary_device_id_bytes && !all_alnum(device_id)) {
    request.device_id = hex_upper(device_id);
  } else {
    if (auto error = check_device_id(device_id)) return *error;
    request.device_id = device_id;
  }

  std::string_view policy_key;
  if (!reader.counted(policy_key)) return truncated("PolicyKey", reader.offset());
  if (policy_key.size() == policy_key_bytes) {
    std::uint32_t key = 0;
    for (std::size_t i = 0; i < policy_key_bytes; ++i)
      key |= std::uint32_t{static_cast<unsigned char>(policy_key[i])} << (8 * i);
    request.policy_key = key;
  } else if (!policy_key.empty()) {
    return fail(QueryErrc::bad_value, "PolicyKey length must be 0 or 4");
  }

  std::string_view device_type;
  if (!reader.counted(device_type)) return truncated("DeviceType", reader.offset());
  if (auto error = check_device_type(device_type)) return *error;
  request.device_type = device_type;

  SeenSet seen;
  while (!reader.at_end()) {
    std::size_t tag_offset = reader.offset();
    std::uint8_t tag = 0;
    reader.byte(tag);
    const ParamEntry* entry = param_by_tag(tag);
    if (!entry)
      return fail(QueryErrc::unknown_parameter, "tag " + std::to_string(tag) + " at byte " + std::to_string(tag_offset) + " is unknown");
    if (!seen.insert(entry->param))
      return fail(QueryErrc::duplicate_parameter, std::string(entry->name) + " is given more than once");
    std::string_view value;
    if (!reader.counted(value)) return truncated(entry->name, tag_offset);
    if (entry->param == Param::options) {
      if (value.size() != 1) return fail(QueryErrc::bad_value, "Options must be one byte");
      auto flags = static_cast<unsigned char>(value[0]);
      request.save_in_sent = flags & option_save_in_sent;
      request.accept_multipart = flags & option_accept_multi_part;
      continue;
    }
    if (auto error = assign(request, entry->param, entry->name, value)) return *error;
  }
  return request;
}

QueryResult parse_base64(std::string_view query) {
  // '+', '/' and '=' may arrive percent-encoded; '+' is a base64 digit here, never a space.
  auto escaped = urls::make_pct_string_view(query);
  if (!escaped) return fail(QueryErrc::bad_encoding, "bad percent escape in the query");
  std::string text = escaped->decode();
  if (!is_canonical_base64(text)) return fail(QueryErrc::bad_base64, "query is neither key=value pairs nor padded base64");

  // EVP_DecodeBlock returns whole 3-byte groups, padding included: subtract the padding it decoded as zeros.
  std::string bytes(text.size() / 4 * 3, '\0');
  int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(bytes.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (decoded < 0) return fail(QueryErrc::bad_base64, "query is not valid base64");
  std::size_t padding = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  bytes.resize(static_cast<std::size_t>(decoded) - padding);
  return parse_base64_bytes(std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
}

// The plain form always has a key=value separator; base64 text only has '=' as trailing padding.
bool looks_plain(std::string_view query) {
  if (query.find('&') != std::string_view::npos) return true;
  auto equals = query.find('=');
  return equals != std::string_view::npos && query.find_first_not_of('=', equals) != std::string_view::npos;
}

// The checks before the form is known, on the raw query: an answer, or nullopt to go on by its form.
std::optional<QueryResult> check_method_and_size(std::string_view method, std::string_view query) {
  bool post = method == "POST";
  if (!post && method != "OPTIONS" && method != "GET")
    return fail(QueryErrc::unsupported_method, "ActiveSync uses POST, OPTIONS and GET only");
  if (query.size() > max_query_bytes)
    return fail(QueryErrc::too_long, "query is longer than " + std::to_string(max_query_bytes) + " bytes");
  if (query.empty()) {
    if (post) return fail(QueryErrc::missing_parameter, "a POST needs a query naming the command");
    return EasRequest{};
  }
  return std::nullopt;
}

}  // namespace

QueryResult parse_query(std::string_view method, std::string_view query) {
  if (auto answer = check_method_and_size(method, query)) return std::move(*answer);
  if (!looks_plain(query)) return parse_base64(query);
  // Boost.URL 1.81's parse_query validates the given bytes but builds its result from the bare pointer,
  // measured again with strlen: a query inside an HTTP request line would run on into " HTTP/1.1\r\n...".
  // Hence a NUL-terminated copy (at most max_query_bytes); a target's parse (the other overload) has none
  // of this.
  const std::string owned(query);
  auto params = urls::parse_query(owned);
  if (!params) return fail(QueryErrc::bad_encoding, "query is not a valid RFC 3986 query");
  return parse_plain(method, *params);
}

QueryResult parse_query(std::string_view method, urls::params_encoded_view query) {
  std::string_view text = query.buffer();
  if (auto answer = check_method_and_size(method, text)) return std::move(*answer);
  return looks_plain(text) ? parse_plain(method, query) : parse_base64(text);
}

std::string_view query_form_name(QueryForm form) {
  switch (form) {
    case QueryForm::plain: return "plain";
    case QueryForm::base64: return "base64";
    case QueryForm::none: break;
  }
  return "none";
}

std::string_view query_errc_name(QueryErrc code) {
  switch (code) {
    case QueryErrc::unsupported_method: return "unsupported_method";
    case QueryErrc::too_long: return "too_long";
    case QueryErrc::bad_encoding: return "bad_encoding";
    case QueryErrc::bad_base64: return "bad_base64";
    case QueryErrc::truncated: return "truncated";
    case QueryErrc::unknown_version: return "unknown_version";
    case QueryErrc::unknown_command: return "unknown_command";
    case QueryErrc::unknown_parameter: return "unknown_parameter";
    case QueryErrc::duplicate_parameter: return "duplicate_parameter";
    case QueryErrc::missing_parameter: return "missing_parameter";
    case QueryErrc::bad_value: return "bad_value";
  }
  return "unknown";
}

}  // namespace easedge::eas
