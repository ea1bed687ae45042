// LDAP directory without a server: RFC 4515 escaping of hostile values, the filters, start-up errors, and
// an unreachable DC answering "unavailable" (with backoff) instead of "no such account".
#include "mapping/ldap_directory.h"

#include "tests/support/test_pki.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fstream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace easedge::mapping {
namespace {

using namespace std::literals;

TEST(LdapFilter, EscapesEveryFilterMetacharacter) {
  EXPECT_EQ(escape_filter_value("alice@corp.example.test"), "alice@corp.example.test");
  EXPECT_EQ(escape_filter_value("*"), "\\2A");
  EXPECT_EQ(escape_filter_value("a)(objectClass=*"), "a\\29\\28objectClass=\\2A");
  EXPECT_EQ(escape_filter_value("back\\slash"), "back\\5Cslash");
  EXPECT_EQ(escape_filter_value("nul\0byte"sv), "nul\\00byte");
  EXPECT_EQ(escape_filter_value("J\xc3\xbcrgen"), "J\\C3\\BCrgen");
  EXPECT_EQ(escape_filter_value(""), "");
}

TEST(LdapFilter, HostileCertificateValuesStayInsideTheirAssertion) {
  DirectoryQuery query;
  query.alt_security_identities = {"X509:<S>CN=x)(|(sAMAccountName=*"};
  query.user_principal_names = {"*)(userPrincipalName=*"};
  query.sam_account_names = {"admin)(objectClass=*))(|(cn=*"};
  std::string filter = search_filter(query);
  // Balanced parentheses and no unescaped '*': the values cannot add terms or wildcards.
  int depth = 0;
  for (char c : filter) {
    depth += c == '(' ? 1 : c == ')' ? -1 : 0;
    ASSERT_GE(depth, 0) << filter;
    EXPECT_NE(c, '*') << filter;
  }
  EXPECT_EQ(depth, 0);
  EXPECT_NE(filter.find("(userPrincipalName=\\2A\\29\\28userPrincipalName=\\2A)"), std::string::npos) << filter;
}

TEST(LdapFilter, SearchFilterCoversEveryCriterionAndTheSpacedSpelling) {
  DirectoryQuery query;
  query.alt_security_identities = {"X509:<SKI>ABCD"};
  query.user_principal_names = {"alice@corp.example.test"};
  query.sam_account_names = {"alice"};
  EXPECT_EQ(search_filter(query),
            "(&(|(objectClass=user)(objectClass=computer))(|(altSecurityIdentities=X509:<SKI>ABCD)"
            "(altSecurityIdentities=X509: <SKI>ABCD)(userPrincipalName=alice@corp.example.test)"
            "(sAMAccountName=alice)))");
  EXPECT_EQ(search_filter({}), "");
}

TEST(LdapFilter, MembershipUsesTheInChainRule) {
  EXPECT_EQ(membership_filter("CN=EAS Users (Phones),OU=Groups,DC=corp"),
            "(memberOf:1.2.840.113556.1.4.1941:=CN=EAS Users \\28Phones\\29,OU=Groups,DC=corp)");
}

class LdapDirectoryTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::ofstream(dir_.path() / "pw") << "S3cret!\n";
    config_.url = "ldap://127.0.0.1:" + std::to_string(closed_port());
    config_.base = "DC=corp,DC=example,DC=test";
    config_.bind_dn = "CN=easproxy,CN=Users,DC=corp,DC=example,DC=test";
    config_.password_file = dir_.path() / "pw";
    config_.timeout = std::chrono::seconds(2);
    config_.worker_threads = 1;
    config_.reconnect_max_backoff = std::chrono::seconds(30);
  }
  // A loopback port nothing listens on (bound, then closed).
  static int closed_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(fd);
    return ntohs(address.sin_port);
  }

  testing::TempDir dir_{"easedge-ldap"};
  config::LdapDirectoryConfig config_;
};

TEST_F(LdapDirectoryTest, UnreachableDirectoryIsUnavailableNotEmpty) {
  auto directory = LdapDirectory::create(config_);
  DirectoryQuery query;
  query.user_principal_names = {"alice@corp.example.test"};
  auto first = directory->search(query);
  EXPECT_EQ(first.status, DirectoryStatus::unavailable);
  EXPECT_NE(first.detail.find(config_.url), std::string::npos) << first.detail;
  EXPECT_EQ(first.detail.find("S3cret"), std::string::npos);
  // Within the backoff the directory answers at once, without trying to connect.
  auto second = directory->search(query);
  EXPECT_EQ(second.status, DirectoryStatus::unavailable);
  EXPECT_NE(second.detail.find("backoff"), std::string::npos) << second.detail;
  EXPECT_EQ(directory->is_member("CN=alice,DC=corp", "CN=g,DC=corp").status, DirectoryStatus::unavailable);
}

TEST_F(LdapDirectoryTest, EmptyQueryNeedsNoServer) {
  auto directory = LdapDirectory::create(config_);
  auto result = directory->search({});
  EXPECT_EQ(result.status, DirectoryStatus::ok);
  EXPECT_TRUE(result.accounts.empty());
}

TEST_F(LdapDirectoryTest, PasswordFileProblemsFailAtStartUp) {
  config_.password_file = dir_.path() / "absent";
  EXPECT_THROW(LdapDirectory::create(config_), std::runtime_error);
  std::ofstream(dir_.path() / "empty") << "\n";
  config_.password_file = dir_.path() / "empty";
  EXPECT_THROW(LdapDirectory::create(config_), std::runtime_error);
}

}  // namespace
}  // namespace easedge::mapping
