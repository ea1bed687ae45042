// Kerberos constrained delegation with protocol transition: an `Authorization: Negotiate` value for Exchange per user.
#pragma once

#include "auth/kerberos/classify.h"
#include "auth/kerberos/credential_cache.h"
#include "config/config.h"

#include <boost/asio/thread_pool.hpp>
#include <boost/system/result.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace easedge::auth::kerberos {

class ServiceCredential;
struct DelegatedCredential;
struct Krb5Failure;

// Why no token: the kind decides the device's answer (403 / 502 / 503, see FailureKind).
struct TokenFailure {
  FailureKind kind = FailureKind::setup_error;
  std::string message;  // user, step, cause and fix, ready for one log line
};

// "Negotiate <base64 SPNEGO token>", the whole Authorization value, or why not.
using TokenResult = boost::system::result<std::string, TokenFailure>;

struct DelegatorStats {
  std::uint64_t cache_hits = 0;      // tokens built from cached tickets, without the KDC
  std::uint64_t kdc_exchanges = 0;   // S4U2Self + S4U2Proxy runs for users not in the cache
  std::uint64_t user_refused = 0;
  std::uint64_t setup_errors = 0;
  std::uint64_t kdc_unavailable = 0;
  std::size_t cached_users = 0;
};

class Delegator {
public:
  // Start-up only: throws std::runtime_error naming the cause and fix when the keytab is unreadable or
  // holds no key for config.principal. Does not contact the KDC (see warm_up).
  explicit Delegator(const config::KerberosConfig& config);
  // Waits for in-flight KDC work; every `done` accepted by token_for has been called when it returns.
  ~Delegator();
  Delegator(const Delegator&) = delete;
  Delegator& operator=(const Delegator&) = delete;

  // Obtains the service account's TGT on a worker and logs the outcome (cause and fix on failure), so a
  // broken set-up shows in the log at start-up instead of at the first request.
  void warm_up();

  // A fresh token for UPN (the mapped account's userPrincipalName, or sAMAccountName@dns.domain when it
  // has none). DONE is called exactly once: inline when the user's delegated tickets are cached (local
  // crypto only, no KDC round trip, safe on an I/O thread), otherwise from a worker thread after the
  // S4U2Self/S4U2Proxy exchanges. Thread-safe. Each call yields a distinct token (an authenticator may
  // be used once: never replay a header value on a second request).
  void token_for(const std::string& upn, std::function<void(TokenResult)> done);

  // Drops UPN's cached tickets, e.g. after Exchange answered 401 to a fresh token (stale service key):
  // the next token_for asks the KDC again.
  void forget(const std::string& upn);

  DelegatorStats stats() const;
  const SetupNames& names() const { return names_; }

private:
  using CredentialPtr = std::shared_ptr<const DelegatedCredential>;
  // A cached credential is used until a deadline on both clocks: the steady one (the cache's own) and
  // the wall clock the tickets' end times are in, so a clock step never makes GSSAPI fetch a new ticket
  // (a KDC round trip) on an I/O thread.
  struct Cached {
    CredentialPtr credential;
    std::chrono::system_clock::time_point use_until;
  };
  struct Obtained;

  void run_exchange(const std::string& key, const std::string& upn);
  Obtained obtain(const std::string& upn);
  std::shared_ptr<ServiceCredential> service_credential(TokenFailure& failure);
  TokenResult make_token(const DelegatedCredential& credential, const std::string& upn) const;
  TokenFailure failure_result(const Krb5Failure& failure, const std::string& subject) const;
  void deliver(const std::function<void(TokenResult)>& done, TokenResult result);
  static TokenFailure fail(FailureKind kind, std::string message);

  const config::KerberosConfig config_;
  const SetupNames names_;
  const std::string target_principal_;  // the SPN with the realm: HTTP/exchange.corp.example.test@CORP.EXAMPLE.TEST

  CredentialCache<Cached> cache_;

  std::mutex pending_mutex_;  // users whose KDC exchange is under way, with everyone waiting for it
  std::unordered_map<std::string, std::vector<std::function<void(TokenResult)>>> pending_;

  std::mutex service_mutex_;  // serialises TGT renewal; held only on workers
  std::shared_ptr<ServiceCredential> service_;
  std::chrono::steady_clock::time_point service_refresh_at_;
  std::chrono::steady_clock::time_point service_expires_at_;

  std::atomic<std::uint64_t> cache_hits_{0};
  std::atomic<std::uint64_t> kdc_exchanges_{0};
  std::atomic<std::uint64_t> user_refused_{0};
  std::atomic<std::uint64_t> setup_errors_{0};
  std::atomic<std::uint64_t> kdc_unavailable_{0};

  boost::asio::thread_pool workers_;  // KDC calls block: they run here, never on I/O threads
};

}  // namespace easedge::auth::kerberos
