// Answers "is this device certificate revoked?" from the current CRL snapshot and OCSP cache; one per process.
//
// Readers (TLS verification, per-request re-checks) only load an immutable snapshot: no I/O, no blocking.
// A single worker thread owns everything that changes: it re-reads CRL files when they change, fetches CRLs
// from CRL Distribution Points, asks OCSP responders, builds a new snapshot aside and swaps it in.
#pragma once

#include "auth/revocation/crl_set.h"
#include "auth/revocation/ocsp.h"
#include "config/config.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
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

// The last attempt at one revocation source, for the operator console.
struct SourceAttempt {
  std::string name;            // file path or URL
  std::string kind;            // "crl_file" | "crl_url" | "ocsp"
  SystemTime time;             // of the last attempt
  std::string error;           // empty: the last attempt succeeded (unchanged bytes count as success)
  std::uint64_t attempts = 0;
  std::uint64_t failures = 0;
};

// Monotonic counters for /metrics.
struct RevocationStats {
  std::uint64_t crl_loads = 0;           // CRLs (files or downloads) accepted
  std::uint64_t crl_load_failures = 0;   // garbage/unverifiable/unreadable CRLs rejected (last good kept)
  std::uint64_t crl_fetches = 0;         // CDP downloads attempted
  std::uint64_t crl_fetch_failures = 0;  // CDP downloads that failed (network, HTTP status, size)
  std::uint64_t ocsp_requests = 0;
  std::uint64_t ocsp_failures = 0;       // responder down, invalid or unverifiable answers
  std::uint64_t ocsp_cache_hits = 0;
  std::uint64_t ocsp_cache_misses = 0;
};

// What a request's admission asks about revocation: RevocationChecker answers, tests give a fake.
class RevocationSource {
public:
  virtual ~RevocationSource() = default;
  // Changes whenever the revocation data changes, so open connections know to re-check.
  virtual std::uint64_t generation() const = 0;
  // The verdict for `leaf` issued by `issuer`; `done` runs exactly once, inline or on another thread.
  virtual void async_check(X509* leaf, X509* issuer, std::function<void(RevocationAnswer)> done) = 0;
};

class RevocationChecker : public RevocationSource {
public:
  // Loads and verifies every tls.crl file (and fetched CRLs cached in cache_dir) against the CAs of
  // tls.client_ca, then starts the worker when anything can change. Throws config::ConfigError naming
  // tls.crl[i] and the file when one is unreadable, garbage, too large or not signed by a trusted CA.
  static std::shared_ptr<RevocationChecker> create(const config::TlsConfig& tls);
  ~RevocationChecker() override;
  RevocationChecker(const RevocationChecker&) = delete;
  RevocationChecker& operator=(const RevocationChecker&) = delete;

  // Synchronous and cheap (no I/O): the verdict of the current snapshot and OCSP cache for `leaf`
  // issued by `issuer`. With nothing known for the issuer: good when revocation is not configured at
  // all (no tls.crl, no fetch_cdp, no ocsp), otherwise unavailable.
  RevocationAnswer check(X509* leaf, X509* issuer) const;

  // check(), and when that is unavailable and fetch_cdp/ocsp can help, asks the certificate's OCSP
  // responder, then its CRL Distribution Points (bounded by fetch_timeout). `done` runs exactly once,
  // inline when check() decided, otherwise on the worker thread. The only revocation I/O a request waits for.
  void async_check(X509* leaf, X509* issuer, std::function<void(RevocationAnswer)> done) override;

  // Re-reads every CRL file and re-fetches every known CRL URL now (SIGHUP). The future is ready when
  // that round has finished; a garbage file never replaces the good data. Callers may drop the future.
  std::future<void> reload();

  // Changes whenever the revocation data changes, so open connections know to re-check.
  std::uint64_t generation() const override { return generation_.load(std::memory_order_acquire); }

  std::vector<CrlInfo> loaded() const;

  // The CRLs past nextUpdate + crl_grace at `now` (for /readyz): one line each, empty when all are current.
  std::vector<std::string> stale(SystemTime now) const;

  RevocationStats stats() const;

  // Every CRL file, CRL URL and OCSP responder tried since start, by name.
  std::vector<SourceAttempt> attempts() const;

private:
  struct Source;
  struct OcspEntry;
  struct Counters {
    std::atomic<std::uint64_t> crl_loads{0}, crl_load_failures{0}, crl_fetches{0}, crl_fetch_failures{0},
        ocsp_requests{0}, ocsp_failures{0}, ocsp_cache_hits{0}, ocsp_cache_misses{0};
  };
  using Clock = std::chrono::steady_clock;
  using Waiter = std::function<void(const std::string& error)>;  // error empty on success

  explicit RevocationChecker(const config::TlsConfig& tls);
  void publish();
  bool needs_worker() const;
  void note_attempt(const std::string& name, const char* kind, const std::string& error);

  // Worker thread only.
  Source& add_source(const std::string& name, bool is_file);
  bool load_file(Source& source, bool force);
  // true: a new CRL was taken; false with `error`: rejected (counted, last good kept); false without: same bytes.
  bool accept(Source& source, const std::string& bytes, std::string& error);
  void fetch(Source& source, Waiter waiter);
  void on_fetched(const std::string& name, const std::string& bytes, const std::string& error);
  void query_ocsp(SharedX509 leaf, SharedX509 issuer, Waiter waiter);
  void fetch_cdps(X509* leaf, Waiter waiter);
  void refresh_ocsp();
  void tick();
  void schedule();
  void load_cache_dir();
  void store_in_cache(const std::string& url, const std::string& bytes) const;

  config::RevocationConfig config_;
  bool configured_ = false;  // any revocation source configured
  std::vector<OwnedX509> trusted_cas_;
  OwnedX509Store store_;  // trusted CAs, for OCSP signers
  std::atomic<std::shared_ptr<const CrlSet>> snapshot_;
  std::atomic<std::uint64_t> generation_{0};
  mutable Counters counters_;

  mutable std::mutex attempts_mutex_;
  std::map<std::string, SourceAttempt> attempts_;  // guarded by attempts_mutex_

  mutable std::mutex ocsp_mutex_;
  mutable std::unordered_map<std::string, OcspEntry> ocsp_cache_;  // key: issuer SHA-1 + serial; `used` set by check()

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::steady_timer timer_;
  std::map<std::string, Source> sources_;                    // file path or URL -> state
  std::map<std::string, std::vector<Waiter>> ocsp_waiters_;  // in-flight OCSP queries
  std::map<std::string, Clock::time_point> ocsp_retry_after_;  // responders that just failed
  std::thread thread_;
};

}  // namespace easedge::auth
