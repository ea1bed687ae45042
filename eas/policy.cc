// ActiveSync policy: User= against the mapped account, device allow/block rules.
#include "eas/policy.h"

#include "eas/ascii.h"

#include <algorithm>

#include <boost/url/grammar/ci_string.hpp>

namespace easedge::eas {
namespace {

namespace grammar = boost::urls::grammar;

char lower(char c) { return grammar::to_lower(c); }

bool equal_ci(char a, char b) { return lower(a) == lower(b); }

// Position of the first case-insensitive occurrence of PIECE in TEXT, or npos.
std::size_t find_lower(std::string_view text, std::string_view piece) {
  auto it = std::search(text.begin(), text.end(), piece.begin(), piece.end(), equal_ci);
  return it == text.end() && !piece.empty() ? std::string_view::npos : static_cast<std::size_t>(it - text.begin());
}

bool starts_with_lower(std::string_view text, std::string_view piece) {
  return text.size() >= piece.size() && std::equal(piece.begin(), piece.end(), text.begin(), equal_ci);
}

bool ends_with_lower(std::string_view text, std::string_view piece) {
  return text.size() >= piece.size() && std::equal(piece.begin(), piece.end(), text.end() - piece.size(), equal_ci);
}

const WildcardPattern* first_match(const std::vector<WildcardPattern>& patterns, std::string_view text) {
  for (const auto& pattern : patterns)
    if (pattern.matches(text)) return &pattern;
  return nullptr;
}

std::vector<WildcardPattern> compile(const std::vector<std::string>& patterns) {
  return {patterns.begin(), patterns.end()};
}

PolicyDecision refuse(PolicyRefusal reason, std::string text) {
  return {boost::system::in_place_error, PolicyDenial{reason, std::move(text)}};
}

}  // namespace

WildcardPattern::WildcardPattern(std::string_view pattern) : pattern_(pattern) {
  std::string piece;
  for (char c : pattern) {
    if (c == '*') {
      has_star_ = true;
      pieces_.push_back(std::move(piece));
      piece.clear();
    } else {
      piece.push_back(c);
    }
  }
  pieces_.push_back(std::move(piece));
}

bool WildcardPattern::matches(std::string_view text) const {
  const std::string& first = pieces_.front();
  if (!has_star_) return text.size() == first.size() && starts_with_lower(text, first);
  const std::string& last = pieces_.back();
  // The anchored ends must not overlap: "ab*ba" does not match "aba".
  if (text.size() < first.size() + last.size()) return false;
  if (!starts_with_lower(text, first) || !ends_with_lower(text, last)) return false;
  std::string_view middle = text.substr(first.size(), text.size() - first.size() - last.size());
  for (std::size_t i = 1; i + 1 < pieces_.size(); ++i) {
    auto found = find_lower(middle, pieces_[i]);
    if (found == std::string_view::npos) return false;
    middle.remove_prefix(found + pieces_[i].size());
  }
  return true;
}

bool user_matches(std::string_view user, const AccountNames& account) {
  if (user.empty()) return false;
  if (auto backslash = user.find('\\'); backslash != std::string_view::npos) {
    user.remove_prefix(backslash + 1);
  } else if (user.find('@') != std::string_view::npos) {
    return user.front() != '@' && ascii_iequals(user, account.user_principal_name);
  }
  if (user.empty() || user.find_first_of("\\@") != std::string_view::npos) return false;
  if (!account.sam_account_name.empty() && ascii_iequals(user, account.sam_account_name)) return true;
  auto at = account.user_principal_name.rfind('@');
  return at != std::string_view::npos && at > 0 && ascii_iequals(user, account.user_principal_name.substr(0, at));
}

std::string_view policy_refusal_name(PolicyRefusal reason) {
  switch (reason) {
    case PolicyRefusal::user_mismatch: return "user_mismatch";
    case PolicyRefusal::device_blocked: return "device_blocked";
    case PolicyRefusal::device_type_blocked: return "device_type_blocked";
    case PolicyRefusal::device_not_allowed: return "device_not_allowed";
  }
  return "unknown";
}

Policy::Policy(const config::EasConfig& config)
    : require_user_match_(config.require_user_match),
      allow_(compile(config.devices.allow)),
      block_(compile(config.devices.block)),
      block_types_(compile(config.devices.block_types)) {}

PolicyDecision Policy::evaluate(const EasRequest& request, const std::optional<AccountNames>& account) const {
  if (request.form == QueryForm::none) return {};

  if (require_user_match_) {
    if (!account) return refuse(PolicyRefusal::user_mismatch, "no mapped account to compare User= with");
    if (request.user.empty()) return refuse(PolicyRefusal::user_mismatch, "the request carries no User=");
    if (!user_matches(request.user, *account))
      return refuse(PolicyRefusal::user_mismatch,
                    "User= does not name the certificate's account " + std::string(account->user_principal_name));
  }

  // DeviceId and DeviceType were validated by the parser (letters/digits, printable ASCII), so quoting them
  // in the text cannot inject anything into a log line.
  if (!request.device_id.empty()) {
    if (const auto* rule = first_match(block_, request.device_id))
      return refuse(PolicyRefusal::device_blocked,
                    "DeviceId " + request.device_id + " matches block rule \"" + rule->text() + "\"");
  }
  if (!request.device_type.empty()) {
    if (const auto* rule = first_match(block_types_, request.device_type))
      return refuse(PolicyRefusal::device_type_blocked,
                    "DeviceType " + request.device_type + " matches block_types rule \"" + rule->text() + "\"");
  }
  if (!request.device_id.empty() && !first_match(allow_, request.device_id))
    return refuse(PolicyRefusal::device_not_allowed, "DeviceId " + request.device_id + " matches no allow rule");
  return {};
}

}  // namespace easedge::eas
