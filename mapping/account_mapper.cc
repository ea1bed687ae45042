#include "mapping/account_mapper.h"

#include "mapping/certificate_bindings.h"
#include "mapping/ldap_directory.h"
#include "mapping/ldif_directory.h"
#include "mapping/mapping_cache.h"
#include "mapping/strong_binding.h"
#include "mapping/subject_template.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <stdexcept>

namespace easedge::mapping {
namespace {

constexpr const char* upn_method = "upn";
constexpr const char* template_method = "subject-template";

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : static_cast<char>(c); });
  return out;
}

std::string sha256_key(X509* cert) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  X509_digest(cert, EVP_sha256(), digest, &length);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

MappedAccount mapped_account_of(const Account& account) {
  return {account.dn, account.sam_account_name, account.user_principal_name, account.object_sid, account.mail};
}

std::string name_of(const Account& account) {
  return account.sam_account_name.empty() ? account.dn : account.sam_account_name;
}

// The account one lookup stage settled on, or why the stage refused (several accounts matched).
struct Choice {
  const Account* account = nullptr;
  std::string method;
  bool strong_method = false;
  std::string ambiguity;
};

Choice single(const std::vector<const Account*>& matches, std::string method, bool strong, const std::string& what) {
  if (matches.size() == 1) return {matches.front(), std::move(method), strong, ""};
  if (matches.size() > 1)
    return {nullptr, std::move(method), strong,
            "ambiguous: " + std::to_string(matches.size()) + " accounts match " + what};
  return {};
}

class DirectoryAccountMapper final : public AccountMapper {
public:
  DirectoryAccountMapper(const config::MappingConfig& config, std::shared_ptr<Directory> directory,
                         std::vector<auth::SharedX509> ntauth, std::size_t worker_threads)
      : config_(config), directory_(std::move(directory)), ntauth_(std::move(ntauth)), cache_(config.cache) {
    if (directory_->blocking()) pool_.emplace(std::max<std::size_t>(worker_threads, 1));
  }

  ~DirectoryAccountMapper() override {
    if (pool_) pool_->join();  // finish what was posted before the members it uses go away
  }

  void map(const CertificateRef& cert, std::function<void(MapResult)> done) override {
    if (!cert.leaf) {
      done({MapStatus::not_mapped, std::nullopt, "", false, "no client certificate"});
      return;
    }
    auto key = sha256_key(cert.leaf.get());
    if (auto cached = cache_.find(key, MappingCache::Clock::now())) {
      stats_.cache_hit();
      done(std::move(*cached));
      return;
    }
    stats_.cache_miss();
    if (!pool_) {
      done(decide_and_cache(cert, key));
      return;
    }
    boost::asio::post(*pool_, [this, cert, key, done = std::move(done)] { done(decide_and_cache(cert, key)); });
  }

  MappingStats stats() const override { return stats_.snapshot(); }

private:
  // One directory request (`call` returns its answer), timed for the stats.
  template <typename Call>
  auto timed(Call call) const {
    auto start = std::chrono::steady_clock::now();
    auto answer = call();
    stats_.directory_request(std::chrono::steady_clock::now() - start);
    return answer;
  }

  MapResult decide_and_cache(const CertificateRef& cert, const std::string& key) {
    MapResult result = decide(cert);
    cache_.store(key, result, MappingCache::Clock::now());
    return result;
  }

  bool issuer_in_ntauth(X509* issuer) const {
    return issuer != nullptr &&
           std::any_of(ntauth_.begin(), ntauth_.end(), [issuer](const auto& ca) { return X509_cmp(issuer, ca.get()) == 0; });
  }

  MapResult decide(const CertificateRef& cert) const {
    X509* leaf = cert.leaf.get();
    const auto candidates = binding_candidates(leaf);
    const bool implicit = issuer_in_ntauth(cert.issuer.get());
    const std::string upn = implicit ? upn_of(leaf) : "";
    std::optional<TemplateMatch> from_template;
    if (implicit && !config_.subject_template.empty())
      from_template = match_subject_template(config_.subject_template, X509_get_subject_name(leaf));

    DirectoryQuery query;
    for (const auto& candidate : candidates) query.alt_security_identities.push_back(candidate.value);
    if (!upn.empty()) query.user_principal_names.push_back(upn);
    if (from_template) {
      auto& names = from_template->attribute == TemplateMatch::Attribute::sam_account_name ? query.sam_account_names
                                                                                           : query.user_principal_names;
      names.push_back(from_template->value);
    }
    DirectorySearch found = timed([&] { return directory_->search(query); });
    if (found.status == DirectoryStatus::unavailable)
      return {MapStatus::directory_unavailable, std::nullopt, "", false, "directory unavailable: " + found.detail};

    Choice choice = choose(found.accounts, candidates, upn, from_template);
    if (!choice.ambiguity.empty()) return {MapStatus::not_mapped, std::nullopt, choice.method, false, choice.ambiguity};
    if (!choice.account)
      return {MapStatus::not_mapped, std::nullopt, "", false, why_unmapped(cert, implicit, upn, from_template)};
    return check_account(*choice.account, choice, leaf);
  }

  // Windows order: explicit altSecurityIdentities (strongest value first), then the UPN, then the template.
  static Choice choose(const std::vector<Account>& accounts, const std::vector<BindingCandidate>& candidates,
                       const std::string& upn, const std::optional<TemplateMatch>& from_template) {
    std::vector<std::vector<std::string>> stored(accounts.size());
    for (std::size_t i = 0; i < accounts.size(); ++i)
      for (const auto& value : accounts[i].alt_security_identities)
        if (auto normalized = normalize_alt_security_identity(value)) stored[i].push_back(*normalized);

    for (const auto& candidate : candidates) {
      std::vector<const Account*> matches;
      for (std::size_t i = 0; i < accounts.size(); ++i)
        if (std::find(stored[i].begin(), stored[i].end(), candidate.value) != stored[i].end())
          matches.push_back(&accounts[i]);
      Choice choice = single(matches, method_name(candidate.kind), is_strong(candidate.kind),
                             "altSecurityIdentities " + candidate.value);
      if (choice.account || !choice.ambiguity.empty()) return choice;
    }
    auto matching = [&accounts](auto&& predicate) {
      std::vector<const Account*> matches;
      for (const auto& account : accounts)
        if (predicate(account)) matches.push_back(&account);
      return matches;
    };
    if (!upn.empty()) {
      Choice choice = single(matching([&](const Account& a) { return lower(a.user_principal_name) == lower(upn); }),
                             upn_method, false, "userPrincipalName " + upn);
      if (choice.account || !choice.ambiguity.empty()) return choice;
    }
    if (from_template) {
      bool by_sam = from_template->attribute == TemplateMatch::Attribute::sam_account_name;
      auto matches = matching([&](const Account& a) {
        return lower(by_sam ? a.sam_account_name : a.user_principal_name) == lower(from_template->value);
      });
      return single(matches, template_method, false,
                    std::string(by_sam ? "sAMAccountName " : "userPrincipalName ") + from_template->value);
    }
    return {};
  }

  std::string why_unmapped(const CertificateRef& cert, bool implicit, const std::string& upn,
                           const std::optional<TemplateMatch>& from_template) const {
    std::string reason = "no account holds an altSecurityIdentities value of this certificate";
    if (!implicit) {
      reason += cert.issuer ? "; the issuing CA (" + ad_dn(X509_get_subject_name(cert.issuer.get())) +
                                  ") is not in ntauth, so UPN and subject-template mapping are not allowed"
                            : "; the issuing CA is unknown, so UPN and subject-template mapping are not allowed";
      return reason;
    }
    reason += upn.empty() ? "; the certificate has no UPN" : "; no account has userPrincipalName " + upn;
    if (!config_.subject_template.empty())
      reason += from_template ? "; no account matches the subject-template value " + from_template->value
                              : "; the subject does not match subject_template";
    return reason;
  }

  MapResult check_account(const Account& account, const Choice& choice, X509* leaf) const {
    MapResult result{MapStatus::not_mapped, mapped_account_of(account), choice.method, false, ""};
    if (account.disabled()) {
      result.reason = "account " + name_of(account) + " is disabled";
      return result;
    }
    if (account.locked_out()) {
      result.reason = "account " + name_of(account) + " is locked out";
      return result;
    }
    if (account.account_expires && *account.account_expires <= std::chrono::system_clock::now()) {
      result.reason = "account " + name_of(account) + " has expired";
      return result;
    }
    BindingEvidence evidence{choice.method, choice.strong_method, sid_of(leaf), account.object_sid,
                             auth::time_of(X509_get0_notBefore(leaf)), account.when_created};
    BindingVerdict verdict = check_strong_binding(config_.strong_binding, evidence, config_.backdating_compensation);
    result.strong = verdict.strong;
    result.reason = verdict.reason;
    if (!verdict.allowed) return result;
    if (!config_.require_group.empty()) {
      DirectoryMembership membership =
          timed([&] { return directory_->is_member(account.dn, config_.require_group); });
      if (membership.status == DirectoryStatus::unavailable) {
        result.status = MapStatus::directory_unavailable;
        result.reason = "directory unavailable: " + membership.detail;
        return result;
      }
      if (!membership.member) {
        result.reason = "account " + name_of(account) + " is not a member of " + config_.require_group;
        return result;
      }
    }
    result.status = MapStatus::mapped;
    return result;
  }

  const config::MappingConfig config_;
  const std::shared_ptr<Directory> directory_;
  const std::vector<auth::SharedX509> ntauth_;
  MappingCache cache_;
  mutable MappingStatsRecorder stats_;  // recorded from const decisions; atomics only
  std::optional<boost::asio::thread_pool> pool_;  // only for a blocking directory
};

}  // namespace

const char* to_string(MapStatus status) {
  switch (status) {
    case MapStatus::mapped: return "mapped";
    case MapStatus::not_mapped: return "not_mapped";
    case MapStatus::directory_unavailable: return "directory_unavailable";
  }
  return "not_mapped";
}

std::shared_ptr<AccountMapper> make_account_mapper(const config::MappingConfig& config,
                                                   std::shared_ptr<Directory> directory, std::size_t worker_threads) {
  std::vector<auth::SharedX509> ntauth;
  for (const auto& file : config.ntauth)
    for (auto& cert : auth::read_pem_certificates(file)) ntauth.push_back(auth::share(std::move(cert)));
  return std::make_shared<DirectoryAccountMapper>(config, std::move(directory), std::move(ntauth), worker_threads);
}

std::shared_ptr<AccountMapper> make_account_mapper(const config::MappingConfig& config) {
  if (config.directory.ldif) return make_account_mapper(config, LdifDirectory::load(*config.directory.ldif), 0);
  if (!config.directory.ldap) throw std::runtime_error("mapping.directory: set ldif or ldap");
  return make_account_mapper(config, LdapDirectory::create(*config.directory.ldap), config.directory.ldap->worker_threads);
}

}  // namespace easedge::mapping
