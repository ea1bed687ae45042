// The Workspace ONE subject template read backwards, and subjects crafted to widen it.
#include "mapping/subject_template.h"

#include <gtest/gtest.h>

#include <memory>

namespace easedge::mapping {
namespace {

using Rdns = std::vector<std::vector<std::pair<const char*, std::string>>>;

std::shared_ptr<X509_NAME> name_of(const Rdns& rdns) {
  std::shared_ptr<X509_NAME> name(X509_NAME_new(), X509_NAME_free);
  for (const auto& rdn : rdns)
    for (std::size_t i = 0; i < rdn.size(); ++i)
      X509_NAME_add_entry_by_txt(name.get(), rdn[i].first, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(rdn[i].second.data()),
                                 static_cast<int>(rdn[i].second.size()), -1, i == 0 ? 0 : -1);
  return name;
}

std::optional<std::string> sam(std::string_view tmpl, const Rdns& rdns) {
  auto match = match_subject_template(tmpl, name_of(rdns).get());
  if (!match) return std::nullopt;
  EXPECT_EQ(match->attribute, TemplateMatch::Attribute::sam_account_name);
  return match->value;
}

constexpr std::string_view workspace_one = "CN=WorkspaceONEUEM.{sAMAccountName}";

TEST(SubjectTemplate, ReadsTheAccountNameFromTheWorkspaceOneSubject) {
  EXPECT_EQ(sam(workspace_one, {{{"CN", "WorkspaceONEUEM.alice"}}}), "alice");
  EXPECT_EQ(sam(workspace_one, {{{"CN", "workspaceoneuem.Bob"}}}), "Bob");  // prefix compared without case
}

TEST(SubjectTemplate, MatchesEitherRdnOrder) {
  std::string_view tmpl = "CN=WorkspaceONEUEM.{sAMAccountName}, OU=Devices,O=Corp";
  Rdns encoded_root_first{{{"O", "Corp"}}, {{"OU", "Devices"}}, {{"CN", "WorkspaceONEUEM.alice"}}};
  Rdns encoded_leaf_first{{{"CN", "WorkspaceONEUEM.alice"}}, {{"OU", "Devices"}}, {{"O", "Corp"}}};
  EXPECT_EQ(sam(tmpl, encoded_root_first), "alice");
  EXPECT_EQ(sam(tmpl, encoded_leaf_first), "alice");
}

TEST(SubjectTemplate, UserPrincipalNamePlaceholder) {
  auto match = match_subject_template("CN={userPrincipalName}", name_of({{{"CN", "alice@corp.example.test"}}}).get());
  ASSERT_TRUE(match);
  EXPECT_EQ(match->attribute, TemplateMatch::Attribute::user_principal_name);
  EXPECT_EQ(match->value, "alice@corp.example.test");
}

TEST(SubjectTemplate, CraftedSubjectsDoNotMatch) {
  EXPECT_FALSE(sam(workspace_one, {{{"CN", "WorkspaceONEUEM."}}}));                         // empty value
  EXPECT_FALSE(sam(workspace_one, {{{"CN", "WorkspaceONEUEM.alice"}}, {{"OU", "x"}}}));    // extra RDN
  EXPECT_FALSE(sam(workspace_one, {{{"CN", "WorkspaceONEUEM.alice,OU=x"}}}));              // quoted by ad_dn
  EXPECT_FALSE(sam(workspace_one, {{{"CN", "WorkspaceONEUEM.al*"}}}));                     // wildcard
  EXPECT_FALSE(sam(workspace_one, {{{"CN", "WorkspaceONEUEM.alice@corp"}}}));              // not a sAMAccountName
  EXPECT_FALSE(sam(workspace_one, {{{"CN", "WorkspaceONEUEM.a\\b"}}}));
  EXPECT_FALSE(sam(workspace_one, {{{"CN", "WorkspaceONEUEM.a)(x=*"}}}));                  // parentheses are fine for AD
                                                                                           // but '=' is not
  EXPECT_FALSE(sam(workspace_one, {{{"CN", std::string("WorkspaceONEUEM.a\x01", 18)}}}));
  EXPECT_FALSE(sam(workspace_one, {{{"CN", "WorkspaceONEUEM.alice"}, {"OU", "x"}}}));      // multi-valued RDN
  EXPECT_FALSE(sam(workspace_one, {}));
  EXPECT_FALSE(sam("CN=Fixed", {{{"CN", "Fixed"}}}));                                      // no placeholder
}

}  // namespace
}  // namespace easedge::mapping
