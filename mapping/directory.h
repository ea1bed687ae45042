// The account directory the mapper searches (an LDIF file or live LDAP/AD), and what it returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace easedge::mapping {

// The AD attributes of one account that the mapping decision needs.
struct Account {
  std::string dn;
  std::string sam_account_name;
  std::string user_principal_name;
  std::string object_sid;                      // "S-1-5-21-..."; "" when absent
  std::uint32_t user_account_control = 0;
  std::optional<std::chrono::system_clock::time_point> when_created;
  std::string mail;
  std::vector<std::string> alt_security_identities;  // as stored
  std::optional<std::chrono::system_clock::time_point> account_expires;  // accountExpires; none = never
  std::uint32_t user_account_control_computed = 0;  // msDS-User-Account-Control-Computed (LDAP)

  // userAccountControl ACCOUNTDISABLE (0x2).
  bool disabled() const { return (user_account_control & 0x2u) != 0; }
  // UF_LOCKOUT (0x10): AD computes it into msDS-User-Account-Control-Computed; an LDIF may set either.
  bool locked_out() const { return ((user_account_control | user_account_control_computed) & 0x10u) != 0; }
};

// One search for every way a certificate may name its account; empty fields are not searched.
struct DirectoryQuery {
  std::vector<std::string> alt_security_identities;  // exact values (compared case-insensitively)
  std::vector<std::string> user_principal_names;
  std::vector<std::string> sam_account_names;
};

enum class DirectoryStatus { ok, unavailable };

struct DirectorySearch {
  DirectoryStatus status = DirectoryStatus::ok;
  std::vector<Account> accounts;  // each matching account once; only user and computer objects
  std::string detail;             // why unavailable
};

struct DirectoryMembership {
  DirectoryStatus status = DirectoryStatus::ok;
  bool member = false;
  std::string detail;
};

// Thread-safe. A blocking directory waits on the network: the mapper calls it only from its own
// worker threads, never from the caller's (I/O) thread.
class Directory {
public:
  virtual ~Directory() = default;
  virtual DirectorySearch search(const DirectoryQuery& query) = 0;
  // Whether `account_dn` is in `group_dn`, directly or through nested groups.
  virtual DirectoryMembership is_member(const std::string& account_dn, const std::string& group_dn) = 0;
  virtual bool blocking() const = 0;
};

// Sets the Account field an AD attribute (name case-insensitive, options like ";binary" ignored) maps to;
// other attributes are ignored. Returns "" or what is wrong with the value (bad objectSid, number, time).
std::string set_account_attribute(Account& account, std::string_view name, std::string_view value);

// AD's whenCreated (GeneralizedTime "20240101120000.0Z"); nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_generalized_time(std::string_view text);

// DN comparison form: ASCII lower-case, no spaces after RDN separators (AD compares DNs this way).
std::string normalize_dn(std::string_view dn);

// Object classes that make an entry a security principal the mapper may return.
inline constexpr const char* account_object_classes[] = {"user", "computer"};

}  // namespace easedge::mapping
