#include "mapping/directory.h"

#include "auth/openssl.h"
#include "mapping/certificate_bindings.h"
#include "mapping/sid.h"

#include <openssl/asn1.h>

#include <charconv>
#include <memory>
#include <span>
#include <strings.h>

namespace easedge::mapping {
namespace {

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

template <typename Number>
std::optional<Number> number_of(std::string_view text) {
  Number number{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return number;
}

// userAccountControl and its computed twin: AD returns a signed 32-bit number; the flags are its bits.
std::optional<std::uint32_t> flags_of(std::string_view text) {
  auto number = number_of<std::int64_t>(text);
  if (!number || *number < INT32_MIN || *number > UINT32_MAX) return std::nullopt;
  return static_cast<std::uint32_t>(*number);
}

// accountExpires: 100 ns intervals since 1601-01-01 (FILETIME); 0 and 2^63-1 mean never.
constexpr std::int64_t filetime_unix_epoch = 116444736000000000;
constexpr std::int64_t filetime_never = INT64_MAX;
constexpr std::int64_t filetime_per_second = 10'000'000;

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_generalized_time(std::string_view text) {
  std::unique_ptr<ASN1_GENERALIZEDTIME, decltype(&ASN1_GENERALIZEDTIME_free)> time(ASN1_GENERALIZEDTIME_new(),
                                                                                 ASN1_GENERALIZEDTIME_free);
  std::string copy(text);  // OpenSSL wants a NUL-terminated string
  if (!time || copy.find('\0') != std::string::npos || ASN1_GENERALIZEDTIME_set_string(time.get(), copy.c_str()) != 1)
    return std::nullopt;
  return auth::time_of(time.get());
}

std::string set_account_attribute(Account& account, std::string_view name, std::string_view value) {
  name = name.substr(0, name.find(';'));
  if (same_name(name, "sAMAccountName")) {
    account.sam_account_name = value;
  } else if (same_name(name, "userPrincipalName")) {
    account.user_principal_name = value;
  } else if (same_name(name, "mail")) {
    account.mail = value;
  } else if (same_name(name, "altSecurityIdentities")) {
    account.alt_security_identities.emplace_back(value);
  } else if (same_name(name, "objectSid")) {
    auto sid = sid_to_string(std::span(reinterpret_cast<const unsigned char*>(value.data()), value.size()));
    if (!sid) return "objectSid is not a binary SID (write it as objectSid:: followed by base64)";
    account.object_sid = *sid;
  } else if (same_name(name, "userAccountControl") || same_name(name, "msDS-User-Account-Control-Computed")) {
    auto flags = flags_of(value);
    if (!flags) return std::string(name) + " is not a number: '" + std::string(value) + "'";
    (same_name(name, "userAccountControl") ? account.user_account_control : account.user_account_control_computed) =
        *flags;
  } else if (same_name(name, "accountExpires")) {
    auto filetime = number_of<std::int64_t>(value);
    if (!filetime) return "accountExpires is not a number: '" + std::string(value) + "'";
    if (*filetime > 0 && *filetime != filetime_never)
      account.account_expires = auth::clamped_time((*filetime - filetime_unix_epoch) / filetime_per_second);
  } else if (same_name(name, "whenCreated")) {
    account.when_created = parse_generalized_time(value);
    if (!account.when_created) return "whenCreated is not a GeneralizedTime: '" + std::string(value) + "'";
  }
  return "";
}

std::string normalize_dn(std::string_view dn) {
  std::string out;
  out.reserve(dn.size());
  bool escaped = false;
  bool after_separator = false;
  for (char c : dn) {
    if (after_separator && c == ' ') continue;
    after_separator = false;
    if (!escaped && (c == ',' || c == '+' || c == ';')) after_separator = true;
    escaped = !escaped && c == '\\';
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
  return out;
}

}  // namespace easedge::mapping
