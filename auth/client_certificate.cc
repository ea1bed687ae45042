// Identity fields read from a device certificate.
#include "auth/client_certificate.h"

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

namespace easedge::auth {

std::string upn_of(X509* cert) {
  static const ASN1_OBJECT* upn_oid = OBJ_txt2obj("1.3.6.1.4.1.311.20.2.3", 1);
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return {};
  std::string upn;
  for (int i = 0; i < sk_GENERAL_NAME_num(names) && upn.empty(); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_OTHERNAME || OBJ_cmp(name->d.otherName->type_id, upn_oid) != 0) continue;
    const ASN1_TYPE* value = name->d.otherName->value;
    if (value == nullptr || value->type != V_ASN1_UTF8STRING) continue;
    const ASN1_UTF8STRING* text = value->value.utf8string;
    std::string candidate(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)), ASN1_STRING_length(text));
    if (candidate.find('\0') != std::string::npos) continue;  // an embedded NUL is never a name
    upn = std::move(candidate);
  }
  GENERAL_NAMES_free(names);
  return upn;
}

std::string sha256_hex_of(X509* cert) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  X509_digest(cert, EVP_sha256(), digest, &length);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned i = 0; i < length; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 0xf]);
  }
  return out;
}

}  // namespace easedge::auth
