// libFuzzer target for the ActiveSync query parser (both forms) and the policy evaluated on what it accepts.
//
// Input layout: byte 0 chooses how the rest is used. Bits 0-1 pick the method (POST, OPTIONS, GET, or an
// unsupported one); bit 2 base64-encodes the rest first, so the fuzzer explores the binary MS-ASHTTP layout
// directly instead of having to discover base64 on its own.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include <boost/url/parse.hpp>
#include <openssl/evp.h>

#include "eas/policy.h"
#include "eas/query.h"

namespace {

using easedge::eas::EasRequest;

constexpr std::string_view method_names[] = {"POST", "OPTIONS", "GET", "PUT"};
constexpr std::uint8_t method_mask = 0x03;
constexpr std::uint8_t base64_flag = 0x04;

void require(bool condition) {
  if (!condition) std::abort();
}

bool has_control(std::string_view value) {
  for (unsigned char c : value)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

// What the parser promises about every request it accepts.
void check_invariants(std::string_view method, const EasRequest& r) {
  if (method == "POST") require(r.command && !r.device_id.empty() && !r.device_type.empty());
  require(r.device_id.size() <= easedge::eas::max_device_id_chars);
  for (unsigned char c : r.device_id) require((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'));
  for (std::string_view value : {std::string_view(r.device_type), std::string_view(r.user), std::string_view(r.collection_id),
                                 std::string_view(r.item_id), std::string_view(r.long_id),
                                 std::string_view(r.attachment_name), std::string_view(r.occurrence)}) {
    require(value.size() <= easedge::eas::max_value_bytes);
    require(!has_control(value));
  }
  if (r.command) require(!easedge::eas::command_name(*r.command).empty());
}

const easedge::eas::Policy& policy() {
  static const easedge::eas::Policy instance([] {
    easedge::config::EasConfig config;
    config.require_user_match = true;
    config.devices.allow = {"*", "A*b*C", "**x"};
    config.devices.block = {"BLOCKED*", "*a*a*a*b"};
    config.devices.block_types = {"Test*Device*"};
    return config;
  }());
  return instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view method = method_names[data[0] & method_mask];
  // The query is handed over as a view of an exactly-sized buffer, never NUL-terminated, as it is inside an
  // HTTP request line: ASan then catches any read past its end (Boost.URL 1.81's parse_query did one).
  std::string_view query(reinterpret_cast<const char*>(data + 1), size - 1);
  std::unique_ptr<char[]> encoded;
  if (data[0] & base64_flag) {
    std::string text(4 * ((query.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()),
                            reinterpret_cast<const unsigned char*>(query.data()), static_cast<int>(query.size()));
    encoded = std::make_unique<char[]>(static_cast<std::size_t>(n));
    std::memcpy(encoded.get(), text.data(), static_cast<std::size_t>(n));
    query = std::string_view(encoded.get(), static_cast<std::size_t>(n));
  }
  auto result = easedge::eas::parse_query(method, query);
  // The proxy hands over the query of the request target it has already parsed: same answer for every
  // query that is valid in a target (the target again in an exactly-sized buffer, for ASan).
  std::string target_text = "/?" + std::string(query);
  auto target_bytes = std::make_unique<char[]>(target_text.size());
  std::memcpy(target_bytes.get(), target_text.data(), target_text.size());
  if (auto target = boost::urls::parse_origin_form(std::string_view(target_bytes.get(), target_text.size()))) {
    auto from_target = easedge::eas::parse_query(method, target->encoded_params());
    require(from_target.has_value() == result.has_value());
    if (result) require(*from_target == *result);
    else require(from_target.error().code == result.error().code);
  }
  if (!result) {
    require(!easedge::eas::query_errc_name(result.error().code).empty());
    return 0;
  }
  const EasRequest& request = *result;
  check_invariants(method, request);
  easedge::eas::AccountNames account{"alice@corp.example.test", "alice"};
  auto decision = policy().evaluate(request, account);
  require(decision || !decision.error().text.empty());
  return 0;
}
