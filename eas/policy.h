// Decides whether an ActiveSync request may reach Exchange: the User= check and the device access rules.
#pragma once

#include <boost/system/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "eas/query.h"

namespace easedge::eas {

// The names of the account the device certificate was mapped to (views, valid during the call).
struct AccountNames {
  std::string_view user_principal_name;  // alice@corp.example.test
  std::string_view sam_account_name;     // alice; may be empty when the mapping only knows the UPN
};

enum class PolicyRefusal : std::uint8_t {
  user_mismatch,        // User= is missing or names another account than the certificate's
  device_blocked,       // DeviceId matches eas.devices.block
  device_type_blocked,  // DeviceType matches eas.devices.block_types
  device_not_allowed,   // DeviceId matches nothing in eas.devices.allow
};

std::string_view policy_refusal_name(PolicyRefusal reason);  // the enumerator's name, e.g. "device_blocked"

// Why the policy refuses a request.
struct PolicyDenial {
  PolicyRefusal reason = PolicyRefusal::user_mismatch;
  std::string text;  // for the log; names the rule that matched
};

// Allowed, or why not.
using PolicyDecision = boost::system::result<void, PolicyDenial>;

// A `*` wildcard pattern, compared ASCII case-insensitively. Matching splits the pattern at its stars and
// finds each literal piece leftmost-first, which is exact for `*`-only patterns and never backtracks, so
// a hostile DeviceId costs at most length(pattern) x length(text) comparisons.
class WildcardPattern {
public:
  explicit WildcardPattern(std::string_view pattern);

  bool matches(std::string_view text) const;
  const std::string& text() const { return pattern_; }

private:
  std::string pattern_;               // as configured, for decisions' text
  std::vector<std::string> pieces_;   // literals between stars; the first and last anchor the ends
  bool has_star_ = false;
};

// Whether USER (alice, DOMAIN\alice or alice@domain, case-insensitive) names ACCOUNT. alice@domain must
// equal the UPN; alice and DOMAIN\alice must equal the sAMAccountName or the UPN's part before '@' (the
// NetBIOS domain is not checked: the proxy does not know it, and the certificate already fixes the forest).
bool user_matches(std::string_view user, const AccountNames& account);

// The eas: policy, compiled once from the configuration; evaluate() is const and thread-safe.
class Policy {
public:
  explicit Policy(const config::EasConfig& config);

  // ACCOUNT is the mapped account, nullopt when there is none. A request without a query (OPTIONS or GET
  // discovery) names no user or device and is allowed. Device rules apply to the DeviceId/DeviceType the
  // request names. Order: user, then block, block_types, allow (block wins over allow).
  PolicyDecision evaluate(const EasRequest& request, const std::optional<AccountNames>& account) const;

private:
  bool require_user_match_;
  std::vector<WildcardPattern> allow_;
  std::vector<WildcardPattern> block_;
  std::vector<WildcardPattern> block_types_;
};

}  // namespace easedge::eas
