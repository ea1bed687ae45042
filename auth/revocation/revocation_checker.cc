// The process-wide revocation checker: start-up loading of CRL files and the per-certificate verdict.
#include "auth/revocation/revocation_checker.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace easedge::auth {
namespace {

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

}  // namespace

RevocationChecker::RevocationChecker(const config::TlsConfig& tls)
    : config_(tls.revocation),
      configured_(!tls.crl.empty() || tls.revocation.fetch_cdp || tls.revocation.ocsp) {}

std::shared_ptr<RevocationChecker> RevocationChecker::create(const config::TlsConfig& tls) {
  std::shared_ptr<RevocationChecker> checker(new RevocationChecker(tls));
  if (checker->configured_) {
    if (tls.client_ca.empty())
      throw config::ConfigError(tls.client_ca, "tls.client_ca", "is required to verify CRLs and OCSP answers");
    try {
      checker->trusted_cas_ = read_certificates(tls.client_ca.string());
    } catch (const std::runtime_error& e) {
      throw config::ConfigError(tls.client_ca, "tls.client_ca", e.what());
    }
  }
  std::vector<std::shared_ptr<const Crl>> crls;
  for (std::size_t i = 0; i < tls.crl.size(); ++i) {
    const auto& path = tls.crl[i];
    const std::string key = "tls.crl[" + std::to_string(i) + "]";
    std::string bytes;
    std::string error;
    if (!read_bounded(path, tls.revocation.max_crl_bytes, bytes, error)) throw config::ConfigError(path, key, error);
    auto crl = Crl::parse(bytes, path.string(), error);
    if (!crl) throw config::ConfigError(path, key, error);
    if (auto problem = crl->verify(checker->trusted_cas_); !problem.empty())
      throw config::ConfigError(path, key, problem);
    crls.push_back(std::move(crl));
  }
  checker->publish(std::make_shared<const CrlSet>(crls));
  return checker;
}

void RevocationChecker::publish(std::shared_ptr<const CrlSet> set) {
  snapshot_.store(std::move(set), std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

RevocationAnswer RevocationChecker::check(X509* leaf, X509* issuer) const {
  RevocationAnswer answer;
  answer.allow_unavailable = config_.on_unavailable == config::RevocationFallback::allow;
  auto snapshot = snapshot_.load(std::memory_order_acquire);
  const auto verdict = snapshot->lookup(leaf, issuer, std::chrono::system_clock::now(), config_.crl_grace);
  switch (verdict.kind) {
    case CrlVerdict::Kind::good:
      answer.status = RevocationStatus::good;
      break;
    case CrlVerdict::Kind::revoked:
      answer.status = RevocationStatus::revoked;
      answer.reason = "serial " + serial_hex(verdict.entry->serial) + " revoked " +
                      format_time(verdict.entry->revoked_at) + " (" + crl_reason_text(verdict.entry->reason) +
                      ") by CRL of " + verdict.crl->issuer() + " from " + verdict.crl->source();
      break;
    case CrlVerdict::Kind::stale:
      answer.status = RevocationStatus::unavailable;
      answer.reason = "CRL of " + verdict.crl->issuer() + " from " + verdict.crl->source() + " expired at " +
                      format_time(*verdict.crl->next_update()) + " (grace " +
                      std::to_string(config_.crl_grace.count()) + "s)";
      break;
    case CrlVerdict::Kind::none:
      if (!configured_) {
        answer.status = RevocationStatus::good;
      } else {
        answer.status = RevocationStatus::unavailable;
        answer.reason = "no CRL for issuer " + name_text(X509_get_subject_name(issuer));
      }
      break;
  }
  return answer;
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

}  // namespace easedge::auth
