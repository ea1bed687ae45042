// The LDIF directory: AD attributes, indexed lookups, transitive groups, and errors with line numbers.
#include "mapping/ldif_directory.h"

#include "tests/support/test_pki.h"

#include <gtest/gtest.h>

#include <fstream>

namespace easedge::mapping {
namespace {

class LdifDirectoryTest : public ::testing::Test {
protected:
  std::filesystem::path write(const std::string& text) {
    auto file = dir_.path() / "users.ldif";
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

  // The line an LdifError names for `text`, or 0 when it loads.
  unsigned long error_line(const std::string& text, std::string* message = nullptr) {
    try {
      LdifDirectory::load(write(text));
    } catch (const LdifError& e) {
      if (message) *message = e.what();
      return e.line();
    }
    return 0;
  }

  testing::TempDir dir_{"easedge-ldif"};
};

const char* lab_ldif = R"(version: 1

# alice: objectSid S-1-5-21-1004336348-1177238915-682003330-1104
dn: CN=alice,CN=Users,DC=corp,DC=example,DC=test
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: user
sAMAccountName: alice
userPrincipalName: alice@corp.example.test
objectSid:: AQUAAAAAAAUVAAAA3PTcO4M9K0aCi6YoUAQAAA==
userAccountControl: 512
whenCreated: 20240102030405.0Z
mail: alice@corp.example.test
memberOf: CN=Phone Users,OU=Groups,DC=corp,DC=example,DC=test
altSecurityIdentities: X509:<I>DC=test,DC=example,CN=Test Issuing CA<SR>563412
altSecurityIdentities: X509: <RFC822>Alice@Corp.Example.Test
altSecurityIdentities: Kerberos:alice@CORP.EXAMPLE.TEST

dn: CN=disabled,CN=Users,DC=corp,DC=example,DC=test
objectClass: user
sAMAccountName: disabled
userPrincipalName: disabled@corp.example.test
userAccountControl: 514

dn: CN=Phone Users,OU=Groups,DC=corp,DC=example,DC=test
objectClass: group
sAMAccountName: phoneusers
memberOf: CN=EAS Users, OU=Groups, DC=corp, DC=example, DC=test

dn: CN=EAS Users,OU=Groups,DC=corp,DC=example,DC=test
objectClass: group
sAMAccountName: eas users
memberOf: CN=Phone Users,OU=Groups,DC=corp,DC=example,DC=test
member: CN=disabled,CN=Users,DC=corp,DC=example,DC=test

dn: CN=Machine,CN=Computers,DC=corp,DC=example,DC=test
objectClass: computer
sAMAccountName: MACHINE$
)";

TEST_F(LdifDirectoryTest, LoadsAdAttributes) {
  auto directory = LdifDirectory::load(write(lab_ldif));
  EXPECT_EQ(directory->size(), 3u);  // groups are not accounts
  auto found = directory->search({{}, {"alice@corp.example.test"}, {}});
  ASSERT_EQ(found.accounts.size(), 1u);
  const Account& alice = found.accounts[0];
  EXPECT_EQ(alice.dn, "CN=alice,CN=Users,DC=corp,DC=example,DC=test");
  EXPECT_EQ(alice.sam_account_name, "alice");
  EXPECT_EQ(alice.object_sid, "S-1-5-21-1004336348-1177238915-682003330-1104");
  EXPECT_EQ(alice.user_account_control, 512u);
  EXPECT_FALSE(alice.disabled());
  ASSERT_TRUE(alice.when_created);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*alice.when_created), 1704164645);
  EXPECT_EQ(alice.mail, "alice@corp.example.test");
  EXPECT_EQ(alice.alt_security_identities.size(), 3u);
  auto disabled = directory->search({{}, {}, {"DISABLED"}});
  ASSERT_EQ(disabled.accounts.size(), 1u);
  EXPECT_TRUE(disabled.accounts[0].disabled());
}

TEST_F(LdifDirectoryTest, SearchesAltSecurityIdentitiesCaseInsensitively) {
  auto directory = LdifDirectory::load(write(lab_ldif));
  auto by_serial = directory->search({{"x509:<i>dc=TEST,dc=example,cn=test issuing ca<sr>563412"}, {}, {}});
  ASSERT_EQ(by_serial.accounts.size(), 1u);
  EXPECT_EQ(by_serial.accounts[0].sam_account_name, "alice");
  // Stored with a space after "X509:" and in mixed case.
  EXPECT_EQ(directory->search({{"X509:<RFC822>alice@corp.example.test"}, {}, {}}).accounts.size(), 1u);
  EXPECT_TRUE(directory->search({{"X509:<RFC822>bob@corp.example.test"}, {}, {}}).accounts.empty());
  EXPECT_TRUE(directory->search({{"Kerberos:alice@CORP.EXAMPLE.TEST"}, {}, {}}).accounts.empty());
}

TEST_F(LdifDirectoryTest, SearchReturnsEachAccountOnceAndNeverGroups) {
  auto directory = LdifDirectory::load(write(lab_ldif));
  auto found = directory->search({{"X509:<RFC822>alice@corp.example.test"}, {"ALICE@corp.example.test"}, {"alice"}});
  EXPECT_EQ(found.accounts.size(), 1u);
  EXPECT_TRUE(directory->search({{}, {}, {"phoneusers"}}).accounts.empty());
  EXPECT_EQ(directory->search({{}, {}, {"machine$"}}).accounts.size(), 1u);
  EXPECT_TRUE(directory->search({}).accounts.empty());
}

TEST_F(LdifDirectoryTest, GroupMembershipIsTransitiveAndSurvivesCycles) {
  auto directory = LdifDirectory::load(write(lab_ldif));
  const std::string alice = "CN=alice,CN=Users,DC=corp,DC=example,DC=test";
  EXPECT_TRUE(directory->is_member(alice, "CN=Phone Users,OU=Groups,DC=corp,DC=example,DC=test").member);
  // Nested (Phone Users -> EAS Users), written with spaces and another case.
  EXPECT_TRUE(directory->is_member(alice, "cn=eas users,ou=groups,dc=corp,dc=example,dc=test").member);
  // Through `member` on the group.
  EXPECT_TRUE(directory->is_member("CN=disabled,CN=Users,DC=corp,DC=example,DC=test",
                                   "CN=EAS Users,OU=Groups,DC=corp,DC=example,DC=test").member);
  EXPECT_FALSE(directory->is_member("CN=Machine,CN=Computers,DC=corp,DC=example,DC=test",
                                    "CN=EAS Users,OU=Groups,DC=corp,DC=example,DC=test").member);
  EXPECT_FALSE(directory->is_member(alice, "CN=Domain Admins,CN=Users,DC=corp,DC=example,DC=test").member);
}

TEST_F(LdifDirectoryTest, ToleratesCrlfFoldingAndComments) {
  auto directory = LdifDirectory::load(write(
      "dn: CN=bob,CN=Users,DC=corp,DC=example,DC=test\r\n"
      "objectClass: user\r\n"
      "# a comment inside\r\n"
      "userPrincipalName: bob@corp.exa\r\n"
      " mple.test\r\n"
      "sAMAccountName: bob\r\n"));
  EXPECT_EQ(directory->search({{}, {"bob@corp.example.test"}, {}}).accounts.size(), 1u);
}

TEST_F(LdifDirectoryTest, SyntaxErrorsNameFileAndLine) {
  std::string message;
  EXPECT_EQ(error_line("dn: CN=a,DC=x\nobjectClass: user\nsAMAccountName a\n", &message), 3u);
  EXPECT_NE(message.find("users.ldif:3:"), std::string::npos) << message;

  const std::string prefix = "version: 1\n\n# comment\ndn: CN=a,DC=x\nobjectClass: user\ndescription: folded\n  line\n\n";
  // Line numbers stay right after a version line, comments, folded lines and blank lines.
  EXPECT_EQ(error_line(prefix + "dn: CN=b,DC=x\nsn:: !!!notbase64\n"), 10u);
  EXPECT_EQ(error_line(prefix + "\n\ndn: CN=b,DC=x\nobjectClass: user\nsn:< file:///etc/passwd\n\n"), 13u);
  EXPECT_EQ(error_line(prefix + "dn: CN=b,DC=x\nchangetype: modify\nreplace: sn\nsn: x\n"), 10u);
  EXPECT_EQ(error_line(prefix + "objectClass: user\n"), 9u);  // no dn
  EXPECT_EQ(error_line(prefix + "dn: CN=b,DC=x\nobjectSid:: AQI=\n"), 10u);
  EXPECT_EQ(error_line(prefix + "dn: CN=b,DC=x\nuserAccountControl: lots\n"), 10u);
  EXPECT_EQ(error_line(prefix + "dn: CN=b,DC=x\nwhenCreated: yesterday\n"), 10u);
  EXPECT_EQ(error_line(prefix + "dn: cn=A, dc=X\n"), 9u);  // duplicate dn
  EXPECT_EQ(error_line(prefix + "dn: CN=b,DC=x\nbad attr: 1\n"), 10u);
  EXPECT_EQ(error_line(prefix + "dn: CN=b,DC=x\ncontrol: 1.2.3 true\n"), 10u);
  EXPECT_EQ(error_line("version: 2\n\ndn: CN=a,DC=x\n"), 1u);
  EXPECT_EQ(error_line(prefix), 0u);
}

// ldif_fuzz: libldap reported a record with no buffer here, and the loader read through a null pointer.
TEST_F(LdifDirectoryTest, RecordWithoutBufferIsSkipped) {
  error_line(std::string("0ersion: 1\n\n#rbctory fg1-100433=G6"));
  error_line(std::string("version: 1\n\n# only a comment"));
}

TEST_F(LdifDirectoryTest, MissingFileIsAnError) {
  EXPECT_THROW(LdifDirectory::load(dir_.path() / "absent.ldif"), LdifError);
}

}  // namespace
}  // namespace easedge::mapping
