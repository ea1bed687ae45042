// An immutable set of verified CRLs, grouped per issuing CA key: what one revocation snapshot knows.
#pragma once

#include "auth/revocation/crl.h"

#include <memory>
#include <vector>

namespace easedge::auth {

// What the CRLs say about one certificate.
struct CrlVerdict {
  enum class Kind { good, revoked, stale, none };
  Kind kind = Kind::none;
  const Crl* crl = nullptr;            // the CRL that decided (revoked: the one listing it; stale: the expired one)
  const RevokedEntry* entry = nullptr; // revoked only
};

class CrlSet {
public:
  // Keeps, per issuing CA key, the newest base CRL and the newest delta CRL that applies to it.
  // Every CRL must already be verified (signer_key() set).
  explicit CrlSet(const std::vector<std::shared_ptr<const Crl>>& crls);

  // Looks `leaf` up in the CRLs signed by `issuer`'s key. Thread-safe (read-only).
  CrlVerdict lookup(X509* leaf, X509* issuer, SystemTime now, std::chrono::seconds grace) const;

  // Whether some CRL (base or delta) of this set was signed by `issuer`'s key, current or not.
  bool covers(X509* issuer) const;

  struct Group {
    std::shared_ptr<const Crl> base;
    std::shared_ptr<const Crl> delta;  // may be null
  };
  const std::vector<Group>& groups() const { return groups_; }

private:
  const Group* find(X509* issuer) const;

  std::vector<Group> groups_;
};

}  // namespace easedge::auth
