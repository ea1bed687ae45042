// The process-wide revocation checker: snapshot reads on any thread, every change on one worker thread.
#include "auth/revocation/revocation_checker.h"

#include "auth/revocation/file_signature.h"
#include "auth/revocation/http_fetch.h"

#include <boost/asio/post.hpp>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace easedge::auth {
namespace {

// OCSP thisUpdate/nextUpdate tolerance for clocks that disagree a little (OpenSSL's customary value).
constexpr std::chrono::seconds ocsp_clock_skew{300};

// Reads a whole file of at most `max_bytes`. Returns false and sets `error` otherwise.
bool read_bounded(const std::filesystem::path& path, std::uint64_t max_bytes, std::string& out, std::string& error) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    error = "cannot read: " + ec.message();
    return false;
  }
  if (size > max_bytes) {
    error = "is " + std::to_string(size) + " bytes, more than tls.revocation.max_crl_bytes (" +
            std::to_string(max_bytes) + ")";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot open for reading";
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  out = std::move(buffer).str();
  return true;
}

std::string sha256_hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr);
  return serial_hex(std::string_view(reinterpret_cast<char*>(digest), size));
}

// OCSP cache key: the issuer certificate's SHA-1 (OpenSSL caches it) and the serial.
std::string ocsp_key(X509* leaf, X509* issuer) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  X509_digest(issuer, EVP_sha1(), digest, &size);
  return std::string(reinterpret_cast<char*>(digest), size) + serial_bytes(X509_get0_serialNumber(leaf));
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

}  // namespace

struct RevocationChecker::Source {
  std::string name;        // file path or URL
  bool is_file = false;
  FileSignature signature;
  std::shared_ptr<const Crl> crl;  // last good
  std::string digest;              // SHA-256 of the bytes last seen: unchanged content is not re-parsed
  Clock::time_point next_fetch{};  // URLs: when to download again
  bool fetching = false;
  std::vector<Waiter> waiters;     // async checks waiting for this download
  std::string last_error;
};

struct RevocationChecker::OcspEntry {
  RevocationStatus status = RevocationStatus::unavailable;
  std::string reason;
  SystemTime valid_until;          // nextUpdate + crl_grace (or thisUpdate + refresh without nextUpdate)
  Clock::time_point fetched_at;
  bool used = false;               // looked up since the last refresh round
  SharedX509 leaf, issuer;         // to ask again while the device stays active
};

RevocationChecker::RevocationChecker(const config::TlsConfig& tls)
    : config_(tls.revocation),
      configured_(!tls.crl.empty() || tls.revocation.fetch_cdp || tls.revocation.ocsp),
      work_(boost::asio::make_work_guard(io_)),
      timer_(io_) {}

RevocationChecker::~RevocationChecker() {
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

bool RevocationChecker::needs_worker() const {
  return std::any_of(sources_.begin(), sources_.end(), [](const auto& s) { return s.second.is_file; }) ||
         config_.fetch_cdp || config_.ocsp;
}

std::shared_ptr<RevocationChecker> RevocationChecker::create(const config::TlsConfig& tls) {
  std::shared_ptr<RevocationChecker> checker(new RevocationChecker(tls));
  if (checker->configured_) {
    if (tls.client_ca.empty())
      throw config::ConfigError(tls.client_ca, "tls.client_ca", "is required to verify CRLs and OCSP answers");
    try {
      checker->trusted_cas_ = read_pem_certificates(tls.client_ca);
    } catch (const std::runtime_error& e) {
      throw config::ConfigError(tls.client_ca, "tls.client_ca", e.what());
    }
    checker->store_.reset(X509_STORE_new());
    for (const auto& ca : checker->trusted_cas_) X509_STORE_add_cert(checker->store_.get(), ca.get());
  }
  for (std::size_t i = 0; i < tls.crl.size(); ++i) {
    const auto& path = tls.crl[i];
    auto& source = checker->add_source(path.string(), true);
    source.signature = signature_of(path);
    std::string bytes;
    std::string error;
    if (!read_bounded(path, tls.revocation.max_crl_bytes, bytes, error) || !checker->accept(source, bytes, error))
      throw config::ConfigError(path, "tls.crl[" + std::to_string(i) + "]", error);
    checker->note_attempt(source.name, "crl_file", error);
  }
  if (tls.revocation.fetch_cdp) {
    // A CA certificate's CDP names where its own issuer publishes: the CRL that covers that CA.
    for (const auto& ca : checker->trusted_cas_)
      for (const auto& url : crl_urls(ca.get())) checker->add_source(url, false);
    checker->load_cache_dir();
  }
  checker->publish();
  if (checker->needs_worker()) {
    checker->thread_ = std::thread([raw = checker.get()] { raw->io_.run(); });
    boost::asio::post(checker->io_, [raw = checker.get()] { raw->tick(); });
  }
  return checker;
}

RevocationChecker::Source& RevocationChecker::add_source(const std::string& name, bool is_file) {
  auto [it, inserted] = sources_.try_emplace(name);
  if (inserted) {
    it->second.name = name;
    it->second.is_file = is_file;
  }
  return it->second;
}

bool RevocationChecker::accept(Source& source, const std::string& bytes, std::string& error) {
  auto digest = sha256_hex(bytes);
  if (source.crl && digest == source.digest) return false;
  source.digest = std::move(digest);
  auto parsed = Crl::parse(bytes, source.name);
  if (parsed)
    if (auto verified = (*parsed)->verify(trusted_cas_); !verified) parsed = verified.error();
  if (!parsed) {
    error = parsed.error();
    counters_.crl_load_failures.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  auto crl = std::move(*parsed);
  // Plain HTTP guarantees integrity (signature) but not freshness: never step back to an older CRL.
  if (source.crl && !source.is_file && source.crl->number() && crl->number() &&
      compare_numbers(*crl->number(), *source.crl->number()) < 0) {
    error = "older than the CRL already loaded (replayed?)";
    counters_.crl_load_failures.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // Delta CRLs named by a base CRL are fetched at once (their refreshes then follow the normal rounds);
  // open connections re-check when they arrive (generation).
  if (config_.fetch_cdp) {
    for (const auto& url : crl->delta_urls()) {
      auto& delta = add_source(url, false);
      if (!delta.crl && !delta.fetching && delta.last_error.empty()) fetch(delta, nullptr);
    }
  }
  spdlog::info("revocation: loaded CRL of {} from {} ({} entries, thisUpdate {}, nextUpdate {})", crl->issuer(),
               source.name, crl->size(), format_time(crl->this_update()),
               crl->next_update() ? format_time(*crl->next_update()) : std::string("none"));
  source.crl = std::move(crl);
  source.last_error.clear();
  counters_.crl_loads.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void RevocationChecker::publish() {
  std::vector<std::shared_ptr<const Crl>> crls;
  for (const auto& [name, source] : sources_)
    if (source.crl) crls.push_back(source.crl);
  snapshot_.store(std::make_shared<const CrlSet>(crls), std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

bool RevocationChecker::load_file(Source& source, bool force) {
  auto signature = signature_of(source.name);
  if (!force && signature == source.signature) return false;
  source.signature = signature;
  std::string bytes;
  std::string error;
  bool taken = false;
  if (!read_bounded(source.name, config_.max_crl_bytes, bytes, error))
    counters_.crl_load_failures.fetch_add(1, std::memory_order_relaxed);
  else
    taken = accept(source, bytes, error);
  note_attempt(source.name, "crl_file", error);
  if (taken) return true;
  if (!error.empty()) {
    source.last_error = error;
    spdlog::warn("revocation: {}: {}; keeping the last good CRL", source.name, error);
  }
  return false;
}

void RevocationChecker::fetch(Source& source, Waiter waiter) {
  if (waiter) source.waiters.push_back(std::move(waiter));
  if (source.fetching) return;
  source.fetching = true;
  counters_.crl_fetches.fetch_add(1, std::memory_order_relaxed);
  HttpFetchRequest request{source.name, {}, {}, config_.max_crl_bytes, config_.fetch_timeout};
  http_fetch(io_, std::move(request), [this, name = source.name](HttpFetchResult result) {
    on_fetched(name, result.body, result.error);
  });
}

void RevocationChecker::on_fetched(const std::string& name, const std::string& bytes, const std::string& fetch_error) {
  auto& source = sources_.at(name);
  source.fetching = false;
  std::string error = fetch_error;
  const auto now = Clock::now();
  source.next_fetch = now + config_.refresh;
  if (!error.empty()) {
    counters_.crl_fetch_failures.fetch_add(1, std::memory_order_relaxed);
  } else if (accept(source, bytes, error)) {
    store_in_cache(name, bytes);
    publish();
  }
  note_attempt(name, "crl_url", error);
  if (error.empty()) {
    source.last_error.clear();
    // Honour nextUpdate when it comes before the next refresh round.
    if (auto next = source.crl->next_update()) {
      auto until = *next - std::chrono::system_clock::now();
      if (until > std::chrono::seconds(0) && until < config_.refresh)
        source.next_fetch = now + std::chrono::duration_cast<Clock::duration>(until);
    }
  } else {
    source.last_error = "CRL " + name + ": " + error;
    spdlog::warn("revocation: {}; keeping the last good CRL", source.last_error);
  }
  auto waiters = std::move(source.waiters);
  source.waiters.clear();
  for (auto& w : waiters) w(source.last_error);
  schedule();
}

void RevocationChecker::load_cache_dir() {
  if (config_.cache_dir.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(config_.cache_dir, ec);
  for (const auto& entry : std::filesystem::directory_iterator(config_.cache_dir, ec)) {
    if (entry.path().extension() != ".url") continue;
    std::string url;
    std::string bytes;
    std::string error;
    std::ifstream(entry.path()) >> url;
    auto crl_file = std::filesystem::path(entry.path()).replace_extension(".crl");
    if (url.empty() || !read_bounded(crl_file, config_.max_crl_bytes, bytes, error)) continue;
    auto& source = add_source(url, false);
    if (!accept(source, bytes, error) && !error.empty()) spdlog::warn("revocation: ignoring cached {}: {}", crl_file.string(), error);
  }
}

void RevocationChecker::store_in_cache(const std::string& url, const std::string& bytes) const {
  if (config_.cache_dir.empty()) return;
  const auto base = config_.cache_dir / sha256_hex(url);
  auto write = [](const std::filesystem::path& file, const std::string& content) {
    auto temporary = std::filesystem::path(file).concat(".tmp");
    std::ofstream(temporary, std::ios::binary | std::ios::trunc) << content;
    std::error_code ec;
    std::filesystem::rename(temporary, file, ec);
    if (ec) spdlog::warn("revocation: cannot write {}: {}", file.string(), ec.message());
  };
  write(std::filesystem::path(base).concat(".crl"), bytes);
  write(std::filesystem::path(base).concat(".url"), url + "\n");
}

void RevocationChecker::tick() {
  bool changed = false;
  const auto now = Clock::now();
  for (auto& [name, source] : sources_) {
    if (source.is_file)
      changed |= load_file(source, false);
    else if (!source.fetching && source.next_fetch <= now)
      fetch(source, nullptr);
  }
  if (changed) publish();
  if (config_.ocsp) refresh_ocsp();
  schedule();
}

void RevocationChecker::schedule() {
  auto wake = Clock::now() + config_.refresh;
  for (const auto& [name, source] : sources_)
    if (!source.is_file && !source.fetching) wake = std::min(wake, source.next_fetch);
  timer_.expires_at(wake);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

std::future<void> RevocationChecker::reload() {
  // Ready when the last copy of `round` is gone: after the files and every download of this round.
  struct Round {
    std::promise<void> promise;
    ~Round() { promise.set_value(); }
  };
  auto round = std::make_shared<Round>();
  auto future = round->promise.get_future();
  if (!thread_.joinable()) return future;  // nothing that can change: ready as `round` goes
  boost::asio::post(io_, [this, round] {
    bool changed = false;
    for (auto& [name, source] : sources_) {
      if (source.is_file)
        changed |= load_file(source, true);
      else
        fetch(source, [round](const std::string&) {});
    }
    if (changed) publish();
  });
  return future;
}

RevocationAnswer RevocationChecker::check(X509* leaf, X509* issuer) const {
  RevocationAnswer answer;
  answer.allow_unavailable = config_.on_unavailable == config::RevocationFallback::allow;
  auto snapshot = snapshot_.load(std::memory_order_acquire);
  const auto now = std::chrono::system_clock::now();
  const auto verdict = snapshot->lookup(leaf, issuer, now, config_.crl_grace);
  if (verdict.kind == CrlVerdict::Kind::revoked) {
    answer.status = RevocationStatus::revoked;
    answer.reason = "serial " + serial_hex(verdict.entry->serial) + " revoked " +
                    format_time(verdict.entry->revoked_at) + " (" + crl_reason_text(verdict.entry->reason) +
                    ") by CRL of " + verdict.crl->issuer() + " from " + verdict.crl->source();
    return answer;
  }
  if (config_.ocsp) {
    std::lock_guard lock(ocsp_mutex_);
    auto it = ocsp_cache_.find(ocsp_key(leaf, issuer));
    if (it != ocsp_cache_.end() && now <= it->second.valid_until) {
      counters_.ocsp_cache_hits.fetch_add(1, std::memory_order_relaxed);
      it->second.used = true;
      if (it->second.status != RevocationStatus::unavailable || verdict.kind != CrlVerdict::Kind::good) {
        answer.status = it->second.status;
        answer.reason = it->second.reason;
        return answer;
      }
    } else {
      counters_.ocsp_cache_misses.fetch_add(1, std::memory_order_relaxed);
    }
  }
  switch (verdict.kind) {
    case CrlVerdict::Kind::good:
      answer.status = RevocationStatus::good;
      break;
    case CrlVerdict::Kind::stale:
      answer.status = RevocationStatus::unavailable;
      answer.reason = "CRL of " + verdict.crl->issuer() + " from " + verdict.crl->source() + " expired at " +
                      format_time(*verdict.crl->next_update()) + " (grace " +
                      std::to_string(config_.crl_grace.count()) + "s)";
      break;
    case CrlVerdict::Kind::revoked:  // answered above
    case CrlVerdict::Kind::none:
      if (!configured_) {
        answer.status = RevocationStatus::good;
      } else {
        answer.status = RevocationStatus::unavailable;
        answer.reason = "no CRL for issuer " + rfc2253(X509_get_subject_name(issuer));
      }
      break;
  }
  return answer;
}

void RevocationChecker::async_check(X509* leaf, X509* issuer, std::function<void(RevocationAnswer)> done) {
  auto answer = check(leaf, issuer);
  if (answer.status != RevocationStatus::unavailable || !(config_.fetch_cdp || config_.ocsp)) {
    done(std::move(answer));
    return;
  }
  boost::asio::post(io_, [this, leaf = share(leaf), issuer = share(issuer), done = std::move(done)]() mutable {
    // OCSP first (one small exchange), then the CRL Distribution Points; report what failed.
    auto errors = std::make_shared<std::vector<std::string>>();
    auto finish = [this, leaf, issuer, errors, done = std::move(done)](const std::string& error) {
      if (!error.empty()) errors->push_back(error);
      auto answer = check(leaf.get(), issuer.get());
      if (answer.status == RevocationStatus::unavailable && !errors->empty())
        answer.reason += (answer.reason.empty() ? "" : "; ") + join(*errors);
      done(std::move(answer));
    };
    auto then_cdp = [this, leaf, issuer, errors, finish = std::move(finish)](const std::string& error) {
      if (!error.empty()) errors->push_back(error);
      if (check(leaf.get(), issuer.get()).status != RevocationStatus::unavailable || !config_.fetch_cdp)
        return finish({});
      fetch_cdps(leaf.get(), finish);
    };
    if (config_.ocsp && !ocsp_urls(leaf.get()).empty())
      query_ocsp(leaf, issuer, then_cdp);
    else
      then_cdp({});
  });
}

void RevocationChecker::fetch_cdps(X509* leaf, Waiter waiter) {
  // One shared completion for all the certificate's distribution points; errors are collected.
  struct Pending {
    Waiter waiter;
    std::vector<std::string> errors;
    ~Pending() { waiter(join(errors)); }
  };
  auto pending = std::make_shared<Pending>();
  pending->waiter = std::move(waiter);
  const auto now = Clock::now();
  for (const auto& url : crl_urls(leaf)) {
    auto& source = add_source(url, false);
    if (source.fetching || source.next_fetch <= now)
      fetch(source, [pending](const std::string& error) {
        if (!error.empty()) pending->errors.push_back(error);
      });
    else if (!source.last_error.empty())
      pending->errors.push_back(source.last_error + " (retried every refresh_seconds)");
  }
}

void RevocationChecker::query_ocsp(SharedX509 leaf, SharedX509 issuer, Waiter waiter) {
  auto key = ocsp_key(leaf.get(), issuer.get());
  if (auto it = ocsp_waiters_.find(key); it != ocsp_waiters_.end()) {
    it->second.push_back(std::move(waiter));
    return;
  }
  const auto url = ocsp_urls(leaf.get()).front();
  if (auto it = ocsp_retry_after_.find(url); it != ocsp_retry_after_.end() && Clock::now() < it->second)
    return waiter("OCSP responder " + url + " failed recently (retried every refresh_seconds)");
  std::shared_ptr<OCSP_REQUEST> request(make_ocsp_request(leaf.get(), issuer.get()).release(), OCSP_REQUEST_free);
  if (!request) return waiter("cannot build an OCSP request for " + url);
  ocsp_waiters_[key].push_back(std::move(waiter));
  counters_.ocsp_requests.fetch_add(1, std::memory_order_relaxed);
  HttpFetchRequest http{url, ocsp_request_der(request.get()), "application/ocsp-request", config_.max_crl_bytes,
                        config_.fetch_timeout};
  http_fetch(io_, std::move(http), [this, key, url, leaf, issuer, request](HttpFetchResult result) {
    std::string error;
    if (result.error.empty()) {
      auto verdict = check_ocsp_response(result.body, request.get(), leaf.get(), issuer.get(), store_.get(),
                                         ocsp_clock_skew);
      if (verdict.kind == OcspVerdict::Kind::invalid) {
        error = verdict.detail;
      } else {
        OcspEntry entry;
        entry.status = verdict.kind == OcspVerdict::Kind::good      ? RevocationStatus::good
                       : verdict.kind == OcspVerdict::Kind::revoked ? RevocationStatus::revoked
                                                                    : RevocationStatus::unavailable;
        entry.reason = "OCSP " + url + ": serial " + serial_hex(serial_bytes(X509_get0_serialNumber(leaf.get()))) +
                       " " + (verdict.detail.empty() ? "good" : verdict.detail);
        entry.valid_until = verdict.next_update ? *verdict.next_update + config_.crl_grace
                                                : verdict.this_update + config_.refresh;
        entry.fetched_at = Clock::now();
        entry.used = true;
        entry.leaf = leaf;
        entry.issuer = issuer;
        bool changed = false;
        {
          std::lock_guard lock(ocsp_mutex_);
          auto it = ocsp_cache_.find(key);
          changed = it == ocsp_cache_.end() ? entry.status != RevocationStatus::good
                                            : it->second.status != entry.status;
          ocsp_cache_[key] = std::move(entry);
        }
        if (changed) generation_.fetch_add(1, std::memory_order_acq_rel);
      }
    } else {
      error = result.error;
    }
    note_attempt(url, "ocsp", error);
    if (!error.empty()) {
      error = "OCSP responder " + url + ": " + error;
      counters_.ocsp_failures.fetch_add(1, std::memory_order_relaxed);
      ocsp_retry_after_[url] = Clock::now() + config_.refresh;
      spdlog::warn("revocation: {}", error);
    } else {
      ocsp_retry_after_.erase(url);
    }
    auto waiters = std::move(ocsp_waiters_[key]);
    ocsp_waiters_.erase(key);
    for (auto& w : waiters) w(error);
  });
}

void RevocationChecker::refresh_ocsp() {
  // Devices that stayed active get a fresh answer every refresh round, so a revocation reaches their open
  // connections (through generation()) without waiting for nextUpdate; idle expired entries are dropped.
  std::vector<std::pair<SharedX509, SharedX509>> due;
  const auto now = Clock::now();
  const auto wall = std::chrono::system_clock::now();
  {
    std::lock_guard lock(ocsp_mutex_);
    for (auto it = ocsp_cache_.begin(); it != ocsp_cache_.end();) {
      auto& entry = it->second;
      if (entry.used && entry.fetched_at + config_.refresh <= now) {
        entry.used = false;
        due.emplace_back(entry.leaf, entry.issuer);
      } else if (!entry.used && wall > entry.valid_until) {
        it = ocsp_cache_.erase(it);
        continue;
      }
      ++it;
    }
  }
  for (auto& [leaf, issuer] : due) query_ocsp(leaf, issuer, [](const std::string&) {});
}

std::vector<CrlInfo> RevocationChecker::loaded() const {
  auto snapshot = snapshot_.load(std::memory_order_acquire);
  std::vector<CrlInfo> out;
  auto add = [&out](const Crl& crl) {
    out.push_back({crl.issuer(), crl.source(), crl.this_update(), crl.next_update(), crl.size(), crl.is_delta()});
  };
  for (const auto& group : snapshot->groups()) {
    add(*group.base);
    if (group.delta) add(*group.delta);
  }
  return out;
}

std::vector<std::string> RevocationChecker::stale(SystemTime now) const {
  std::vector<std::string> problems;
  for (const auto& info : loaded()) {
    if (info.next_update && now > *info.next_update + config_.crl_grace)
      problems.push_back("CRL of " + info.issuer + " from " + info.source + " expired at " +
                         format_time(*info.next_update));
  }
  return problems;
}

void RevocationChecker::note_attempt(const std::string& name, const char* kind, const std::string& error) {
  std::lock_guard lock(attempts_mutex_);
  auto& attempt = attempts_[name];
  attempt.name = name;
  attempt.kind = kind;
  attempt.time = std::chrono::system_clock::now();
  attempt.error = error;
  ++attempt.attempts;
  if (!error.empty()) ++attempt.failures;
}

std::vector<SourceAttempt> RevocationChecker::attempts() const {
  std::lock_guard lock(attempts_mutex_);
  std::vector<SourceAttempt> out;
  for (const auto& [name, attempt] : attempts_) out.push_back(attempt);
  return out;
}

RevocationStats RevocationChecker::stats() const {
  auto get = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  return {get(counters_.crl_loads),     get(counters_.crl_load_failures), get(counters_.crl_fetches),
          get(counters_.crl_fetch_failures), get(counters_.ocsp_requests), get(counters_.ocsp_failures),
          get(counters_.ocsp_cache_hits), get(counters_.ocsp_cache_misses)};
}

}  // namespace easedge::auth
