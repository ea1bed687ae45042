#include "auth/kerberos/delegator.h"

#include "auth/kerberos/handles.h"
#include "auth/kerberos/s4u.h"
#include "auth/kerberos/service_credential.h"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

namespace easedge::auth::kerberos {
namespace {

using std::chrono::seconds;
using std::chrono::steady_clock;

// AD's limit for userPrincipalName; anything longer cannot name an account.
constexpr std::size_t max_upn_length = 1024;

bool plausible_upn(const std::string& upn) {
  if (upn.empty() || upn.size() > max_upn_length) return false;
  return std::none_of(upn.begin(), upn.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c);
  });
  return text;
}

// How long to keep something valid for LIFETIME: until MARGIN before its end, or half-way through a
// lifetime too short for the margin.
steady_clock::duration keep_for(seconds lifetime, seconds margin) {
  return lifetime > 2 * margin ? lifetime - margin : lifetime / 2;
}

}  // namespace

struct Delegator::Obtained {
  CredentialPtr credential;
  seconds lifetime{0};
  TokenFailure failure;
};

Delegator::Delegator(const config::KerberosConfig& config)
    : config_(config),
      names_{config.principal, config.service},
      target_principal_(target_principal(config)),
      cache_(config.cache_max_entries),
      workers_(std::max<std::size_t>(config.worker_threads, 1)) {
  if (auto checked = check_keytab(config.principal, config.keytab); !checked) {
    Diagnosis d = classify(Stage::keytab, checked.error().code, names_);
    throw std::runtime_error("upstream.kerberos.keytab " + config.keytab.string() + ": " + d.cause + " (" +
                             checked.error().message + "); fix: " + d.fix);
  }
}

Delegator::~Delegator() { workers_.join(); }

void Delegator::warm_up() {
  boost::asio::post(workers_, [this] {
    TokenFailure failure;
    if (service_credential(failure) == nullptr) spdlog::warn("{}", failure.message);
  });
}

void Delegator::token_for(const std::string& upn, std::function<void(TokenResult)> done) {
  if (!plausible_upn(upn)) {
    deliver(done, fail(FailureKind::user_refused, "kerberos: refusing to impersonate an empty, overlong or binary user name"));
    return;
  }
  // AD matches UPNs case-insensitively: one cache entry per account, whatever the certificate's spelling.
  std::string key = lower(upn);
  if (auto cached = cache_.find(key, steady_clock::now())) {
    if (std::chrono::system_clock::now() < cached->use_until) {
      TokenResult result = make_token(*cached->credential, upn);
      if (result) {
        ++cache_hits_;
        deliver(done, std::move(result));
        return;
      }
    }
    cache_.erase(key);  // the wall clock moved past the tickets, or they are unusable: ask the KDC again
  }
  {
    std::lock_guard lock(pending_mutex_);
    auto [it, first] = pending_.try_emplace(key);
    it->second.push_back(std::move(done));
    if (!first) return;  // an exchange for this user is already under way: wait for it
  }
  boost::asio::post(workers_, [this, key, upn] { run_exchange(key, upn); });
}

void Delegator::forget(const std::string& upn) { cache_.erase(lower(upn)); }

DelegatorStats Delegator::stats() const {
  DelegatorStats s;
  s.cache_hits = cache_hits_.load();
  s.kdc_exchanges = kdc_exchanges_.load();
  s.user_refused = user_refused_.load();
  s.setup_errors = setup_errors_.load();
  s.kdc_unavailable = kdc_unavailable_.load();
  s.cached_users = cache_.size();
  return s;
}

void Delegator::run_exchange(const std::string& key, const std::string& upn) {
  ++kdc_exchanges_;
  Obtained obtained = obtain(upn);
  if (obtained.credential) {
    auto keep = keep_for(obtained.lifetime, config_.credential_refresh_margin);
    cache_.insert(key, Cached{obtained.credential, std::chrono::system_clock::now() + keep},
                  steady_clock::now() + keep);
  }
  std::vector<std::function<void(TokenResult)>> waiters;
  {
    std::lock_guard lock(pending_mutex_);
    auto it = pending_.find(key);
    waiters = std::move(it->second);
    pending_.erase(it);
  }
  for (auto& done : waiters) {
    deliver(done, obtained.credential ? make_token(*obtained.credential, upn) : TokenResult(obtained.failure));
  }
}

Delegator::Obtained Delegator::obtain(const std::string& upn) {
  Obtained out;
  auto service = service_credential(out.failure);
  if (!service) return out;
  DelegationOutcome outcome = delegate(*service, upn, UserNameForm::enterprise, target_principal_);
  if (outcome.failure) {
    out.failure = failure_result(*outcome.failure, upn + " to " + names_.spn);
    return out;
  }
  out.credential = std::move(outcome.credential);
  out.lifetime = outcome.lifetime;
  return out;
}

std::shared_ptr<ServiceCredential> Delegator::service_credential(TokenFailure& failure) {
  std::lock_guard lock(service_mutex_);
  auto now = steady_clock::now();
  if (service_ && now < service_refresh_at_) return service_;

  auto result = ServiceCredential::acquire(config_.principal, config_.keytab);
  if (result) {
    const TicketInfo& tgt = (*result)->tgt();
    auto lifetime = std::chrono::duration_cast<seconds>(tgt.end_time - std::chrono::system_clock::now());
    service_ = *result;
    service_expires_at_ = now + lifetime;
    service_refresh_at_ = now + keep_for(lifetime, config_.credential_refresh_margin);
    spdlog::info("kerberos: TGT for {} obtained from {} ({}, {}forwardable), renewing in {} s", config_.principal,
                 config_.keytab.string(), enctype_name(tgt.ticket_enctype), tgt.forwardable ? "" : "NOT ",
                 std::chrono::duration_cast<seconds>(service_refresh_at_ - now).count());
    return service_;
  }

  TokenFailure problem = failure_result(result.error(), config_.principal);
  if (service_ && now < service_expires_at_) {
    // Renewal is attempted early on purpose: keep serving with the current TGT while it lasts.
    spdlog::warn("{}; the current TGT stays in use for another {} s", problem.message,
                 std::chrono::duration_cast<seconds>(service_expires_at_ - now).count());
    return service_;
  }
  failure = std::move(problem);
  return nullptr;
}

TokenResult Delegator::make_token(const DelegatedCredential& credential, const std::string& upn) const {
  auto header = negotiate_header(credential, target_principal_);
  if (!header) return failure_result(header.error(), upn + " to " + names_.spn);
  return std::move(*header);
}

TokenFailure Delegator::failure_result(const Krb5Failure& failure, const std::string& subject) const {
  Diagnosis d = classify(failure.stage, failure.code, names_);
  std::string message = "kerberos " + std::string(to_string(failure.stage)) + " for " + subject + ": " + d.cause +
                        " (" + failure.message + ")";
  if (!d.fix.empty()) message += "; fix: " + d.fix;
  return fail(d.kind, std::move(message));
}

void Delegator::deliver(const std::function<void(TokenResult)>& done, TokenResult result) {
  if (!result) {
    switch (result.error().kind) {
      case FailureKind::user_refused:
        ++user_refused_;
        break;
      case FailureKind::setup_error:
        ++setup_errors_;
        break;
      case FailureKind::kdc_unavailable:
        ++kdc_unavailable_;
        break;
    }
  }
  done(std::move(result));
}

TokenFailure Delegator::fail(FailureKind kind, std::string message) { return TokenFailure{kind, std::move(message)}; }

}  // namespace easedge::auth::kerberos
