// Chain, validity and EKU checks for device certificates, with a verdict cache.
#include "auth/certificate_validator.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>


namespace easedge::auth {

namespace {

// Failed verdicts are re-evaluated after this long: a not-yet-valid certificate becomes valid in time,
// and an operator fixing a CA bundle should not have to wait for a restart.
constexpr auto failed_verdict_lifetime = std::chrono::seconds(60);

ChainStatus status_for(int error) {
  switch (error) {
    case X509_V_OK: return ChainStatus::valid;
    case X509_V_ERR_CERT_HAS_EXPIRED: return ChainStatus::expired;
    case X509_V_ERR_CERT_NOT_YET_VALID: return ChainStatus::not_yet_valid;
    case X509_V_ERR_INVALID_PURPOSE: return ChainStatus::wrong_usage;
    default: return ChainStatus::untrusted;
  }
}

SystemTime not_after(X509* cert) { return time_of(X509_get0_notAfter(cert)).value_or(SystemTime{}); }

}  // namespace

CertificateValidator::CertificateValidator(const config::TlsConfig& tls, const std::filesystem::path& config_file,
                                           std::size_t cache_entries)
    : store_(X509_STORE_new()), cache_entries_(cache_entries) {
  if (!tls.client_ca.empty()) {
    try {
      trusted_ = read_pem_certificates(tls.client_ca);
    } catch (const std::runtime_error& e) {
      throw config::ConfigError(config_file, "tls.client_ca", e.what());
    }
  }
  for (const auto& cert : trusted_) {
    X509_STORE_add_cert(store_.get(), cert.get());
    trusted_subjects_.push_back(rfc2253(X509_get_subject_name(cert.get())));
  }
  // Intermediates in client_ca are trust anchors too (IIS trusts what is in its store); chains may end there.
  X509_STORE_set_flags(store_.get(), X509_V_FLAG_PARTIAL_CHAIN);
}

STACK_OF(X509_NAME)* CertificateValidator::client_ca_names() const {
  STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
  for (const auto& cert : trusted_) sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(cert.get())));
  return names;
}

std::shared_ptr<const ClientCertificate> CertificateValidator::verdict_for(SSL* ssl) {
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (leaf == nullptr) {
    static const auto absent = std::make_shared<const ClientCertificate>();
    return absent;
  }
  return verify(leaf, SSL_get_peer_cert_chain(ssl));
}

std::shared_ptr<const ClientCertificate> CertificateValidator::verify(X509* leaf, STACK_OF(X509)* untrusted) {
  auto sha256 = sha256_hex_of(leaf);
  if (auto cached = lookup(sha256)) return cached;

  auto verdict = std::make_shared<ClientCertificate>();
  verdict->leaf = share(leaf);
  verdict->sha256_hex = sha256;
  verdict->subject = rfc2253(X509_get_subject_name(leaf));
  verdict->upn = upn_of(leaf);

  OwnedX509StoreCtx ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store_.get(), leaf, untrusted);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  int ok = X509_verify_cert(ctx.get());
  int error = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx.get());
  if (ok != 1 && error == X509_V_OK) error = X509_V_ERR_UNSPECIFIED;
  verdict->status = status_for(error);
  if (error != X509_V_OK) {
    verdict->detail = std::string(X509_verify_cert_error_string(error)) + " at depth " +
                      std::to_string(X509_STORE_CTX_get_error_depth(ctx.get()));
  }
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
  auto valid_until = not_after(leaf);
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i)
    valid_until = std::min(valid_until, not_after(sk_X509_value(chain, i)));
  verdict->valid_until = valid_until;
  if (chain != nullptr && sk_X509_num(chain) > 1) verdict->issuer = share(sk_X509_value(chain, 1));
  ctx.reset();
  ERR_clear_error();

  remember(verdict);
  return verdict;
}

std::shared_ptr<const ClientCertificate> CertificateValidator::lookup(const std::string& sha256) {
  std::lock_guard lock(mutex_);
  auto it = cache_.find(sha256);
  if (it == cache_.end()) return nullptr;
  auto now = std::chrono::steady_clock::now();
  bool still_valid = it->second.verdict->status != ChainStatus::valid ||
                     std::chrono::system_clock::now() < it->second.verdict->valid_until;
  if (now >= it->second.expires || !still_valid) {
    lru_.erase(it->second.lru);
    cache_.erase(it);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.verdict;
}

void CertificateValidator::remember(const std::shared_ptr<const ClientCertificate>& verdict) {
  if (cache_entries_ == 0) return;
  auto lifetime = verdict->status == ChainStatus::valid ? std::chrono::hours(24) : failed_verdict_lifetime;
  std::lock_guard lock(mutex_);
  if (cache_.count(verdict->sha256_hex)) return;
  while (cache_.size() >= cache_entries_) {
    cache_.erase(cache_.find(lru_.back()));  // by iterator: the key views the evicted verdict
    lru_.pop_back();
  }
  std::string_view key = verdict->sha256_hex;
  lru_.push_front(key);
  cache_.emplace(key, CacheEntry{verdict, std::chrono::steady_clock::now() + lifetime, lru_.begin()});
}

}  // namespace easedge::auth
