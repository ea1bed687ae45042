// Parsing, signature checking and indexing of one CRL.
#include "auth/revocation/crl.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>

namespace easedge::auth {
namespace {

using Asn1IntegerPtr = Owned<ASN1_INTEGER, ASN1_INTEGER_free>;
using Asn1EnumeratedPtr = Owned<ASN1_ENUMERATED, ASN1_ENUMERATED_free>;
using IdpPtr = Owned<ISSUING_DIST_POINT, ISSUING_DIST_POINT_free>;

std::string strip_leading_zeros(std::string bytes) {
  auto first = bytes.find_first_not_of('\0');
  return first == std::string::npos ? std::string() : bytes.substr(first);
}

std::optional<std::string> crl_integer_extension(X509_CRL* crl, int nid) {
  Asn1IntegerPtr value(static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, nid, nullptr, nullptr)));
  if (!value) return std::nullopt;
  return serial_bytes(value.get());
}

// The http:// full-name URIs of a CRLDistributionPoints-shaped extension.
std::vector<std::string> http_urls(STACK_OF(DIST_POINT)* points) {
  std::vector<std::string> out;
  for (int i = 0; i < sk_DIST_POINT_num(points); ++i) {
    const DIST_POINT* point = sk_DIST_POINT_value(points, i);
    if (!point->distpoint || point->distpoint->type != 0) continue;  // 0 = fullName
    const GENERAL_NAMES* names = point->distpoint->name.fullname;
    for (int j = 0; j < sk_GENERAL_NAME_num(names); ++j) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, j);
      if (name->type != GEN_URI) continue;
      const auto* uri = name->d.uniformResourceIdentifier;
      std::string url(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)), ASN1_STRING_length(uri));
      if (url.rfind("http://", 0) == 0) out.push_back(std::move(url));
    }
  }
  sk_DIST_POINT_pop_free(points, DIST_POINT_free);
  return out;
}

// PEM first (the common case for files), then DER. Exactly one CRL, nothing after it.
boost::system::result<OwnedCrl, std::string> decode(std::string_view bytes) {
  if (bytes.empty()) return std::string("empty");
  static constexpr std::string_view pem_marker = "-----BEGIN X509 CRL-----";
  if (bytes.find(pem_marker) != std::string_view::npos) {
    OwnedBio bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
    OwnedCrl crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (!crl) return std::string("PEM block is not a valid X.509 CRL");
    return crl;
  }
  auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  OwnedCrl crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(bytes.size())));
  if (!crl) return std::string("not a CRL (neither PEM nor DER)");
  if (p != reinterpret_cast<const unsigned char*>(bytes.data()) + bytes.size())
    return std::string("trailing bytes after the DER CRL");
  return crl;
}

}  // namespace

std::string serial_bytes(const ASN1_INTEGER* serial) {
  const auto* data = ASN1_STRING_get0_data(serial);
  return strip_leading_zeros(std::string(reinterpret_cast<const char*>(data), ASN1_STRING_length(serial)));
}

std::string serial_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789ABCDEF";
  if (bytes.empty()) return "00";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0xf];
  }
  return out;
}

int compare_numbers(std::string_view a, std::string_view b) {
  while (!a.empty() && a.front() == '\0') a.remove_prefix(1);
  while (!b.empty() && b.front() == '\0') b.remove_prefix(1);
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
}

std::string crl_reason_text(int reason) {
  if (reason < 0) return "no reason given";
  return OCSP_crl_reason_str(reason);
}

std::vector<std::string> crl_urls(X509* cert) {
  auto urls = http_urls(
      static_cast<STACK_OF(DIST_POINT)*>(X509_get_ext_d2i(cert, NID_crl_distribution_points, nullptr, nullptr)));
  ERR_clear_error();
  return urls;
}

boost::system::result<std::shared_ptr<Crl>, std::string> Crl::parse(std::string_view bytes, std::string source) {
  auto decoded = decode(bytes);
  ERR_clear_error();
  if (!decoded) return decoded.error();
  OwnedCrl crl = std::move(*decoded);

  // A CRL that covers only some reasons, only CAs, or other issuers' certificates (indirect) would
  // wrongly answer "good" for a device certificate it does not cover: refuse it rather than trust it.
  int critical = 0;
  IdpPtr idp(static_cast<ISSUING_DIST_POINT*>(
      X509_CRL_get_ext_d2i(crl.get(), NID_issuing_distribution_point, &critical, nullptr)));
  if (!idp && critical >= 0) return std::string("unreadable issuingDistributionPoint extension");
  if (idp && (idp->indirectCRL || idp->onlysomereasons || idp->onlyCA || idp->onlyattr))
    return std::string("partitioned or indirect CRL (issuingDistributionPoint scope) is not supported");

  std::shared_ptr<Crl> out(new Crl());
  out->issuer_ = rfc2253(X509_CRL_get_issuer(crl.get()));
  out->source_ = std::move(source);
  out->this_update_ = time_of(X509_CRL_get0_lastUpdate(crl.get())).value_or(SystemTime{});
  if (const auto* next = X509_CRL_get0_nextUpdate(crl.get())) out->next_update_ = time_of(next).value_or(SystemTime{});
  out->number_ = crl_integer_extension(crl.get(), NID_crl_number);
  out->delta_base_ = crl_integer_extension(crl.get(), NID_delta_crl);
  out->delta_urls_ = http_urls(
      static_cast<STACK_OF(DIST_POINT)*>(X509_CRL_get_ext_d2i(crl.get(), NID_freshest_crl, nullptr, nullptr)));
  ERR_clear_error();

  const STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  const int count = sk_X509_REVOKED_num(revoked);
  out->revoked_.reserve(count > 0 ? count : 0);
  for (int i = 0; i < count; ++i) {
    const X509_REVOKED* entry = sk_X509_REVOKED_value(revoked, i);
    RevokedEntry e;
    e.serial = serial_bytes(X509_REVOKED_get0_serialNumber(entry));
    e.revoked_at = time_of(X509_REVOKED_get0_revocationDate(entry)).value_or(SystemTime{});
    Asn1EnumeratedPtr reason(
        static_cast<ASN1_ENUMERATED*>(X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, nullptr, nullptr)));
    if (reason) e.reason = static_cast<int>(ASN1_ENUMERATED_get(reason.get()));
    out->revoked_.push_back(std::move(e));
  }
  ERR_clear_error();
  std::sort(out->revoked_.begin(), out->revoked_.end(),
            [](const RevokedEntry& a, const RevokedEntry& b) { return a.serial < b.serial; });
  out->crl_ = std::move(crl);
  return out;
}

boost::system::result<void, std::string> Crl::verify(const std::vector<OwnedX509>& trusted_cas) {
  bool issuer_known = false;
  for (const auto& ca : trusted_cas) {
    if (X509_NAME_cmp(X509_get_subject_name(ca.get()), issuer_name()) != 0) continue;
    issuer_known = true;
    // keyUsage, when present, must allow cRLSign (RFC 5280 4.2.1.3).
    if ((X509_get_extension_flags(ca.get()) & EXFLAG_KUSAGE) && !(X509_get_key_usage(ca.get()) & KU_CRL_SIGN))
      continue;
    EVP_PKEY* key = X509_get0_pubkey(ca.get());
    if (key && X509_CRL_verify(crl_.get(), key) == 1) {
      EVP_PKEY_up_ref(key);
      signer_key_.reset(key);
      ERR_clear_error();
      return {};
    }
  }
  ERR_clear_error();
  if (!issuer_known) return "issuer " + issuer_ + " is not among the trusted client CAs";
  return "signature does not verify against the trusted CA " + issuer_;
}

const RevokedEntry* Crl::find(std::string_view serial) const {
  auto it = std::lower_bound(revoked_.begin(), revoked_.end(), serial,
                             [](const RevokedEntry& e, std::string_view s) { return e.serial < s; });
  return it != revoked_.end() && it->serial == serial ? &*it : nullptr;
}

}  // namespace easedge::auth
