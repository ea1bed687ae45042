// One parsed certificate revocation list: issuer, validity window, numbering and an index of revoked serials.
#pragma once

#include "auth/openssl.h"

#include <boost/system/result.hpp>
#include <openssl/x509.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace easedge::auth {

// One entry of a CRL. The serial is kept as its big-endian magnitude bytes (sign cannot occur in
// valid certificates and is ignored), so lookups compare plain byte strings.
struct RevokedEntry {
  std::string serial;
  SystemTime revoked_at;
  int reason = -1;  // CRLReason code, -1 when the entry has none
};

// An immutable, parsed and signature-checked CRL. Shared between snapshots, never modified.
class Crl {
public:
  // Parses PEM or DER bytes: the CRL, or why the bytes are not one usable CRL (garbage, trailing bytes, or a
  // scope easedge cannot apply: indirect or reason-partitioned).
  static boost::system::result<std::shared_ptr<Crl>, std::string> parse(std::string_view bytes, std::string source);

  // Checks the signature against each CA whose subject is the CRL's issuer and which may sign CRLs;
  // on success remembers that CA's key (signer_key()). Nothing, or the problem.
  boost::system::result<void, std::string> verify(const std::vector<OwnedX509>& trusted_cas);

  const X509_NAME* issuer_name() const { return X509_CRL_get_issuer(crl_.get()); }
  X509_CRL* native() const { return crl_.get(); }  // for an X509_STORE, which takes its own reference
  const std::string& issuer() const { return issuer_; }  // RFC 2253 text, for logs
  const std::string& source() const { return source_; }  // file path or URL it came from
  SystemTime this_update() const { return this_update_; }
  std::optional<SystemTime> next_update() const { return next_update_; }
  const std::optional<std::string>& number() const { return number_; }     // cRLNumber, magnitude bytes
  const std::optional<std::string>& delta_base() const { return delta_base_; } // BaseCRLNumber of a delta
  bool is_delta() const { return delta_base_.has_value(); }
  std::size_t size() const { return revoked_.size(); }
  // http:// URLs of the Freshest CRL extension: where the delta CRLs for this base are published.
  const std::vector<std::string>& delta_urls() const { return delta_urls_; }
  EVP_PKEY* signer_key() const { return signer_key_.get(); }

  // The entry for `serial` (magnitude bytes), or nullptr.
  const RevokedEntry* find(std::string_view serial) const;
  const std::vector<RevokedEntry>& entries() const { return revoked_; }

  // Whether this CRL is past nextUpdate + grace at `now`. Subtracts from `now`: nextUpdate may be the clock's maximum.
  bool expired(SystemTime now, std::chrono::seconds grace) const {
    return next_update_ && now - grace > *next_update_;
  }

private:
  Crl() = default;

  OwnedCrl crl_;
  std::string issuer_;
  std::string source_;
  SystemTime this_update_;
  std::optional<SystemTime> next_update_;
  std::optional<std::string> number_;
  std::optional<std::string> delta_base_;
  std::vector<std::string> delta_urls_;
  std::vector<RevokedEntry> revoked_;  // sorted by serial
  OwnedPkey signer_key_;
};

// Helpers shared by the revocation code and its callers' logs.
std::string serial_bytes(const ASN1_INTEGER* serial);  // magnitude bytes of a serial number
std::string serial_hex(std::string_view serial_bytes); // uppercase hex, "1A2B"
std::string crl_reason_text(int reason);               // "keyCompromise", "unspecified", ...
// Orders two magnitude byte strings (serials, CRL numbers) numerically: <0, 0, >0.
int compare_numbers(std::string_view a, std::string_view b);

// http:// URLs of a certificate's CRL Distribution Points (where its issuer's CRL is published).
std::vector<std::string> crl_urls(X509* cert);

}  // namespace easedge::auth
