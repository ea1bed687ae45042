// libFuzzer target for the access log formatters: whatever bytes a device puts in its request, a W3C line
// keeps its 15 fields on one line and a JSON line parses as one object with the same strings.
//
// Input layout: the bytes are cut at 0xFF into the record's string fields, in the order of record_fields below.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/json/src.hpp>  // header-only Boost.JSON: the reference parser for the JSON lines

#include "proxy/access_log.h"

namespace {

using easedge::proxy::AccessLogRecord;

constexpr std::string_view AccessLogRecord::*record_fields[] = {
    &AccessLogRecord::server_ip,   &AccessLogRecord::client_ip,   &AccessLogRecord::method,
    &AccessLogRecord::uri_stem,    &AccessLogRecord::uri_query,   &AccessLogRecord::user,
    &AccessLogRecord::cert_sha256, &AccessLogRecord::user_agent,  &AccessLogRecord::eas_command,
    &AccessLogRecord::device_id,   &AccessLogRecord::device_type, &AccessLogRecord::request_id,
};
constexpr char field_separator = '\xff';
constexpr std::size_t w3c_field_count = 15;

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  AccessLogRecord record;
  record.status = 200;
  for (auto field : record_fields) {
    auto cut = input.find(field_separator);
    record.*field = input.substr(0, cut);
    input = cut == std::string_view::npos ? std::string_view() : input.substr(cut + 1);
  }

  std::string w3c;
  easedge::proxy::format_w3c(record, w3c);
  require(w3c.find('\n') == w3c.size() - 1);
  std::size_t fields = 0;
  bool in_field = false;
  for (unsigned char c : w3c) {
    require(c >= 0x20 || c == '\n');
    require(c != 0x7f);
    bool separator = c == ' ' || c == '\n';
    if (!separator && !in_field) ++fields;
    in_field = !separator;
  }
  require(fields == w3c_field_count);

  std::string json;
  easedge::proxy::format_json(record, json);
  require(json.find('\n') == json.size() - 1);
  boost::system::error_code error;
  auto value = boost::json::parse(std::string_view(json).substr(0, json.size() - 1), error);
  require(!error && value.is_object());
  // ASCII strings, control characters and quotes included, come back exactly.
  std::string_view sent = record.user;
  bool ascii = true;
  for (unsigned char c : sent) ascii = ascii && c < 0x80;
  if (ascii) require(value.as_object().at("user").as_string() == sent);
  return 0;
}
