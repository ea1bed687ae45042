// Maps a verified device certificate to its Active Directory account as Windows does (MS-PKCA 3.1.5.2.1,
// KB5014754), against an LDIF or LDAP directory, with a cache in front.
#pragma once

#include "auth/openssl.h"
#include "config/config.h"
#include "mapping/directory.h"
#include "mapping/mapping_stats.h"

#include <openssl/x509.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace easedge::mapping {

// The certificate to map: the verified leaf and the CA that issued it (from the verified chain; may be
// null, which rules out implicit mapping). Both are shared references (X509_up_ref'd).
struct CertificateRef {
  auth::SharedX509 leaf;
  auth::SharedX509 issuer;
};

enum class MapStatus {
  mapped,                 // use `account`
  not_mapped,             // refuse (403.16); `reason` says why
  directory_unavailable,  // the directory could not answer: 503 + Retry-After, never 403 nor 200
};
const char* to_string(MapStatus status);

struct MappedAccount {
  std::string dn{};
  std::string sam_account_name{};
  std::string user_principal_name{};
  std::string object_sid{};  // "S-1-5-21-..."; "" when the directory has none
  std::string mail{};        // "" when the directory has none
};

struct MapResult {
  MapStatus status = MapStatus::not_mapped;
  // The account the certificate leads to; set also when the mapping is refused (disabled account,
  // weak mapping under full enforcement, not in require_group), so the refusal can name it.
  std::optional<MappedAccount> account;
  // "altsec:issuer-serial", "altsec:ski", "altsec:sha1-pukey", "altsec:issuer-subject", "altsec:subject",
  // "altsec:rfc822", "upn", "subject-template"; "" when no account was found.
  std::string method;
  bool strong = false;
  std::string reason;  // why refused or unavailable, or why a weak mapping was allowed; "" otherwise
};

// Thread-safe. `done` is called exactly once, either inline (cache hit, LDIF directory) or from one of the
// mapper's worker threads (LDAP); callers post back to their own thread. Destroying the mapper waits for
// lookups in flight (each bounded by the LDAP timeout); do not destroy it from inside `done`.
class AccountMapper {
public:
  virtual ~AccountMapper() = default;
  virtual void map(const CertificateRef& cert, std::function<void(MapResult)> done) = 0;
  // Cache and directory counters since this mapper was made; lock-free, cheap enough for every scrape.
  virtual MappingStats stats() const = 0;
};

// Builds the mapper the configuration describes: LDIF or LDAP directory, NTAuth CAs, cache. Throws at
// start-up (config::ConfigError, LdifError, std::runtime_error) when a file cannot be used.
std::shared_ptr<AccountMapper> make_account_mapper(const config::MappingConfig& config);
// The same decisions over a given directory (tests, map-cert). `worker_threads` runs a blocking directory.
std::shared_ptr<AccountMapper> make_account_mapper(const config::MappingConfig& config,
                                                   std::shared_ptr<Directory> directory, std::size_t worker_threads);

}  // namespace easedge::mapping
