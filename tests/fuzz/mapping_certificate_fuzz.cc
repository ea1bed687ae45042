// libFuzzer target: the bytes a device controls, through everything the mapper reads from them — the
// certificate (DN text, serial, SKI, SAN UPN/e-mail/URI, SID extension), the SID extension and SID text
// parsers, stored altSecurityIdentities values, the subject template and LDAP filter escaping.
#include "mapping/certificate_bindings.h"
#include "mapping/ldap_directory.h"
#include "mapping/sid.h"
#include "mapping/subject_template.h"

#include <openssl/x509.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

using namespace easedge::mapping;

void check(bool invariant) {
  if (!invariant) std::abort();
}

// No filter metacharacter may survive escaping: the value can never add a term or a wildcard.
void check_escaped(std::string_view value) {
  std::string escaped = escape_filter_value(value);
  for (char c : escaped) check(c != '(' && c != ')' && c != '*' && c != '\0');
}

void exercise_certificate(X509* cert) {
  auto bindings = certificate_bindings(cert);
  check(bindings.issuer_serial.starts_with("X509:<I>"));
  for (const auto& candidate : binding_candidates(cert)) {
    check(normalize_alt_security_identity(candidate.value) == candidate.value);
    check_escaped(candidate.value);
  }
  std::string upn = upn_of(cert);
  check(upn.find('\0') == std::string::npos);
  check_escaped(upn);
  check_escaped(email_of(cert));
  auto sid = sid_of(cert);
  if (sid.state == CertificateSid::State::present) check(canonical_sid(sid.sid) == sid.sid);
  if (auto match = match_subject_template("CN=WorkspaceONEUEM.{sAMAccountName}", X509_get_subject_name(cert))) {
    check(!match->value.empty());
    check(match->value.find_first_of(",+=\"\\<>#;@*") == std::string::npos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto sid = sid_from_extension(data, static_cast<long>(size))) check(canonical_sid(*sid) == *sid);
  if (auto sid = canonical_sid(text)) check(sid_from_string(*sid).has_value());
  if (auto sid = sid_to_string(std::span(data, size))) check(sid_from_string(*sid) == std::vector(data, data + size));
  if (auto normalized = normalize_alt_security_identity(text)) {
    check(normalized->starts_with("X509:<"));
    check(normalize_alt_security_identity(*normalized) == normalized);
  }
  check_escaped(text);

  const unsigned char* p = data;
  if (X509* cert = d2i_X509(nullptr, &p, static_cast<long>(size))) {
    exercise_certificate(cert);
    X509_free(cert);
  }
  return 0;
}
