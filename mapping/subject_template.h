// The Workspace ONE request-template rule: "CN=WorkspaceONEUEM.{sAMAccountName}" read backwards from a
// certificate subject to the account it names.
#pragma once

#include <openssl/x509.h>

#include <optional>
#include <string>
#include <string_view>

namespace easedge::mapping {

struct TemplateMatch {
  enum class Attribute { sam_account_name, user_principal_name };
  Attribute attribute;
  std::string value;
};

// Matches `subject` against `subject_template` (one {sAMAccountName} or {userPrincipalName} placeholder;
// the rest compared case-insensitively with the subject as ad_dn() writes it, in encoded or in reversed
// RDN order). The placeholder must cover a plain value: anything a DN would quote or escape, and "@" for
// a sAMAccountName, makes the match fail, so a crafted subject cannot widen it into another RDN.
std::optional<TemplateMatch> match_subject_template(std::string_view subject_template, const X509_NAME* subject);

}  // namespace easedge::mapping
