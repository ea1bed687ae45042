// Verifies device certificates against the trusted CAs once per distinct certificate, and caches the verdict.
//
// The TLS handshake never fails on a bad certificate (as nginx does, the decision is made per request so the
// device gets an HTTP 403 with a reason). The chain is verified after the handshake from the peer certificate,
// so resumed sessions get exactly the same verdict as full handshakes.
#pragma once

#include "auth/client_certificate.h"
#include "config/config.h"

#include <openssl/ssl.h>

#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace easedge::auth {

class CertificateValidator {
public:
  // Loads tls.client_ca; throws config::ConfigError naming the key on unreadable or empty files.
  CertificateValidator(const config::TlsConfig& tls, const std::filesystem::path& config_file,
                       std::size_t cache_entries);

  // The verdict for the certificate the peer of `ssl` presented (absent when none). Thread-safe.
  std::shared_ptr<const ClientCertificate> verdict_for(SSL* ssl);
  // The same for a certificate outside TLS (map-cert, tests); `untrusted` is the extra chain, may be null.
  std::shared_ptr<const ClientCertificate> verify(X509* leaf, STACK_OF(X509)* untrusted);

  // Trusted CA subjects, for the start-up report.
  const std::vector<std::string>& trusted_subjects() const { return trusted_subjects_; }
  // The CA names a server sends in its CertificateRequest (SSL_CTX_set_client_CA_list takes ownership).
  STACK_OF(X509_NAME)* client_ca_names() const;

private:
  std::shared_ptr<const ClientCertificate> lookup(const std::string& sha256);
  void remember(const std::shared_ptr<const ClientCertificate>& verdict);

  OwnedX509Store store_;
  std::vector<OwnedX509> trusted_;
  std::vector<std::string> trusted_subjects_;
  std::size_t cache_entries_;

  // A small LRU of verdicts keyed by the certificate's SHA-256: a device reconnecting costs no chain work.
  // Keys and LRU entries view the verdict's own sha256_hex (immutable, owned by the entry): one entry per
  // device certificate, so no two more copies of it.
  struct CacheEntry {
    std::shared_ptr<const ClientCertificate> verdict;
    std::chrono::steady_clock::time_point expires;
    std::list<std::string_view>::iterator lru;
  };
  std::mutex mutex_;
  std::unordered_map<std::string_view, CacheEntry> cache_;
  std::list<std::string_view> lru_;
};

}  // namespace easedge::auth
