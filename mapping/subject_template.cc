#include "mapping/subject_template.h"

#include "mapping/certificate_bindings.h"

#include <strings.h>

namespace easedge::mapping {
namespace {

constexpr std::string_view sam_placeholder = "{sAMAccountName}";
constexpr std::string_view upn_placeholder = "{userPrincipalName}";

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<std::string> placeholder_value(std::string_view prefix, std::string_view suffix, std::string_view dn) {
  if (dn.size() <= prefix.size() + suffix.size()) return std::nullopt;
  if (!equal_ignoring_case(dn.substr(0, prefix.size()), prefix) ||
      !equal_ignoring_case(dn.substr(dn.size() - suffix.size()), suffix))
    return std::nullopt;
  std::string_view value = dn.substr(prefix.size(), dn.size() - prefix.size() - suffix.size());
  for (unsigned char c : value)
    if (c < 0x20 || c == 0x7f || std::string_view(",+=\"\\<>#;/[]:|*?").find(static_cast<char>(c)) != std::string_view::npos)
      return std::nullopt;
  return std::string(value);
}

// The name with its RDNs in the opposite order (LDAP string order for a root-first encoded name).
X509_NAME* reversed(const X509_NAME* name) {
  X509_NAME* out = X509_NAME_new();
  int count = X509_NAME_entry_count(name);
  int previous_set = -1;
  for (int i = count - 1; i >= 0; --i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    int set = X509_NAME_ENTRY_set(entry);
    X509_NAME_add_entry(out, entry, -1, set == previous_set ? -1 : 0);
    previous_set = set;
  }
  return out;
}

// Templates are often written "CN=x, OU=y"; names are compared without spaces after separators.
std::string without_separator_spaces(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == ' ' && !out.empty() && (out.back() == ',' || out.back() == '+')) continue;
    out += c;
  }
  return out;
}

}  // namespace

std::optional<TemplateMatch> match_subject_template(std::string_view subject_template, const X509_NAME* subject) {
  auto attribute = TemplateMatch::Attribute::sam_account_name;
  std::string_view placeholder = sam_placeholder;
  auto at = subject_template.find(sam_placeholder);
  if (at == std::string_view::npos) {
    attribute = TemplateMatch::Attribute::user_principal_name;
    placeholder = upn_placeholder;
    at = subject_template.find(upn_placeholder);
  }
  if (at == std::string_view::npos || X509_NAME_entry_count(subject) == 0) return std::nullopt;
  std::string prefix = without_separator_spaces(subject_template.substr(0, at));
  std::string suffix = without_separator_spaces(subject_template.substr(at + placeholder.size()));

  X509_NAME* other_order = reversed(subject);
  std::string in_order = ad_dn(subject);
  std::string in_reverse = ad_dn(other_order);
  X509_NAME_free(other_order);
  auto value = placeholder_value(prefix, suffix, in_order);
  if (!value) value = placeholder_value(prefix, suffix, in_reverse);
  if (!value) return std::nullopt;
  if (attribute == TemplateMatch::Attribute::sam_account_name && value->find('@') != std::string::npos)
    return std::nullopt;
  return TemplateMatch{attribute, *value};
}

}  // namespace easedge::mapping
