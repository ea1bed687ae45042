// Live Active Directory over LDAP/LDAPS (libldap): a small pool of bound connections, used only from the
// mapper's worker threads, with TLS verification, timeouts and reconnection with backoff.
#pragma once

#include "config/config.h"
#include "mapping/directory.h"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace easedge::mapping {

// RFC 4515 escaping of a value placed in a search filter (libldap's ldap_bv2escaped_filter_value):
// * ( ) \ NUL, control and non-ASCII bytes become \XX. Certificate fields are attacker-controlled.
std::string escape_filter_value(std::string_view value);

// The one search filter for a query: user/computer objects matching any altSecurityIdentities value (also
// in the "X509: <" spelling some tools store), UPN or sAMAccountName. "" when the query is empty.
std::string search_filter(const DirectoryQuery& query);

// The base-scope filter that holds when an entry is in `group_dn`, transitively (LDAP_MATCHING_RULE_IN_CHAIN).
std::string membership_filter(const std::string& group_dn);

class LdapDirectory final : public Directory {
public:
  // Reads the password from password_file (never logged); throws std::runtime_error when it cannot.
  // Does not connect: the first lookup does, so start-up does not depend on the DC being reachable.
  static std::shared_ptr<LdapDirectory> create(const config::LdapDirectoryConfig& config);
  ~LdapDirectory() override;

  DirectorySearch search(const DirectoryQuery& query) override;
  DirectoryMembership is_member(const std::string& account_dn, const std::string& group_dn) override;
  bool blocking() const override { return true; }

private:
  struct Connection;
  class Lease;
  struct Outcome;

  LdapDirectory(const config::LdapDirectoryConfig& config, std::string password);
  template <typename Operation>
  Outcome run(Operation&& operation);
  std::string connect(Connection& connection) const;

  const config::LdapDirectoryConfig config_;
  const std::string password_;
  std::mutex mutex_;
  std::condition_variable idle_changed_;
  std::vector<std::unique_ptr<Connection>> idle_;  // one per worker thread
};

}  // namespace easedge::mapping
