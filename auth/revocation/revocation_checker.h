// Answers "is this device certificate revoked?" from the current CRL snapshot; one per process, thread-safe.
#pragma once

#include "auth/revocation/crl_set.h"
#include "config/config.h"

#include <openssl/x509.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace easedge::auth {

enum class RevocationStatus { good, revoked, unavailable };

struct RevocationAnswer {
  RevocationStatus status = RevocationStatus::unavailable;
  std::string reason;               // for logs: what decided, e.g. "serial 1A revoked ... by CRL of CN=..."
  bool allow_unavailable = false;   // tls.revocation.on_unavailable == allow

  // The caller's decision: good passes, revoked never does, unavailable as on_unavailable says.
  bool admits() const {
    return status == RevocationStatus::good || (status == RevocationStatus::unavailable && allow_unavailable);
  }
};

// One loaded CRL, for the start-up log block and metrics.
struct CrlInfo {
  std::string issuer;  // RFC 2253
  std::string source;  // file path or URL
  SystemTime this_update;
  std::optional<SystemTime> next_update;
  std::size_t entries = 0;
  bool delta = false;
};

class RevocationChecker {
public:
  // Loads and verifies every tls.crl file against the CAs of tls.client_ca. Throws config::ConfigError
  // naming tls.crl[i] and the file when one is unreadable, garbage, too large or not signed by a trusted CA.
  static std::shared_ptr<RevocationChecker> create(const config::TlsConfig& tls);

  // Synchronous and cheap (no I/O): the verdict of the current snapshot for `leaf` issued by `issuer`.
  // With no CRL for the issuer: good when revocation is not configured at all (no tls.crl, no
  // fetch_cdp, no ocsp), otherwise unavailable.
  RevocationAnswer check(X509* leaf, X509* issuer) const;

  // Changes whenever the revocation data changes, so open connections know to re-check.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  std::vector<CrlInfo> loaded() const;

  // Whether every issuer with a CRL has a current one (for /readyz). Returns the problems, empty when current.
  std::vector<std::string> stale(SystemTime now) const;

private:
  explicit RevocationChecker(const config::TlsConfig& tls);
  void publish(std::shared_ptr<const CrlSet> set);

  config::RevocationConfig config_;
  bool configured_ = false;  // any revocation source configured
  std::vector<OwnedX509> trusted_cas_;
  std::atomic<std::shared_ptr<const CrlSet>> snapshot_;
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace easedge::auth
