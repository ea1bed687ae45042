#include "auth/revocation/revocation_checker.h"

#include "tests/auth/revocation/test_pki.h"

#include <gtest/gtest.h>

#include <string>

namespace easedge::auth {
namespace {

using namespace std::chrono_literals;
using testing::CrlSpec;
using testing::TempDir;
using testing::TestCa;

constexpr int key_compromise = 1;
constexpr int certificate_hold = 6;
constexpr int remove_from_crl = 8;

class RevocationCheckerTest : public ::testing::Test {
protected:
  RevocationCheckerTest() : root_("Test Root"), issuing_("Test Issuing", &root_) {
    tls_.client_ca = dir_.write("ca-bundle.pem", issuing_.cert_pem() + root_.cert_pem());
  }

  void use_crls(std::initializer_list<std::string> contents) {
    tls_.crl.clear();
    int i = 0;
    for (const auto& c : contents) tls_.crl.push_back(dir_.write("crl" + std::to_string(i++) + ".crl", c));
  }

  std::string create_error() {
    try {
      RevocationChecker::create(tls_);
    } catch (const config::ConfigError& e) {
      return e.what();
    }
    return "no error";
  }

  TempDir dir_;
  TestCa root_;
  TestCa issuing_;
  config::TlsConfig tls_;
};

TEST_F(RevocationCheckerTest, GoodAndRevokedFromPemCrl) {
  use_crls({issuing_.crl_pem({.revoked = {{0x1A, key_compromise}}, .number = 3})});
  auto checker = RevocationChecker::create(tls_);
  auto good = issuing_.issue_leaf(0x1B, "good");
  auto revoked = issuing_.issue_leaf(0x1A, "revoked");

  EXPECT_EQ(checker->check(good.get(), issuing_.cert()).status, RevocationStatus::good);
  auto answer = checker->check(revoked.get(), issuing_.cert());
  EXPECT_EQ(answer.status, RevocationStatus::revoked);
  EXPECT_FALSE(answer.admits());
  EXPECT_NE(answer.reason.find("serial 1A revoked "), std::string::npos) << answer.reason;
  EXPECT_NE(answer.reason.find("(keyCompromise)"), std::string::npos) << answer.reason;
  EXPECT_NE(answer.reason.find("CN=Test Issuing"), std::string::npos) << answer.reason;
}

TEST_F(RevocationCheckerTest, DerCrlIsAccepted) {
  use_crls({issuing_.crl_der({.revoked = {{7}}})});
  auto checker = RevocationChecker::create(tls_);
  auto revoked = issuing_.issue_leaf(7, "revoked");
  auto answer = checker->check(revoked.get(), issuing_.cert());
  EXPECT_EQ(answer.status, RevocationStatus::revoked);
  EXPECT_NE(answer.reason.find("(no reason given)"), std::string::npos) << answer.reason;
}

TEST_F(RevocationCheckerTest, ExpiredCrlIsUnavailableUnlessWithinGrace) {
  use_crls({issuing_.crl_pem({.this_update_offset = -7200s, .next_update_offset = -600s, .revoked = {{9}}})});
  auto good = issuing_.issue_leaf(8, "good");
  auto revoked = issuing_.issue_leaf(9, "revoked");

  auto checker = RevocationChecker::create(tls_);
  auto answer = checker->check(good.get(), issuing_.cert());
  EXPECT_EQ(answer.status, RevocationStatus::unavailable);
  EXPECT_FALSE(answer.admits());
  EXPECT_NE(answer.reason.find("expired at"), std::string::npos) << answer.reason;
  EXPECT_EQ(checker->stale(std::chrono::system_clock::now()).size(), 1u);
  // A listed serial stays revoked even in an outdated CRL.
  EXPECT_EQ(checker->check(revoked.get(), issuing_.cert()).status, RevocationStatus::revoked);

  tls_.revocation.on_unavailable = config::RevocationFallback::allow;
  EXPECT_TRUE(RevocationChecker::create(tls_)->check(good.get(), issuing_.cert()).admits());

  tls_.revocation.crl_grace = 3600s;
  checker = RevocationChecker::create(tls_);
  EXPECT_EQ(checker->check(good.get(), issuing_.cert()).status, RevocationStatus::good);
  EXPECT_TRUE(checker->stale(std::chrono::system_clock::now()).empty());
}

TEST_F(RevocationCheckerTest, CrlWithoutNextUpdateNeverExpires) {
  use_crls({issuing_.crl_pem({.next_update_offset = std::nullopt})});
  auto leaf = issuing_.issue_leaf(3, "leaf");
  EXPECT_EQ(RevocationChecker::create(tls_)->check(leaf.get(), issuing_.cert()).status, RevocationStatus::good);
}

// Seen while writing crl_fuzz: a time past 2262 overflowed the nanosecond clock (UB; this CRL looked expired).
TEST_F(RevocationCheckerTest, CrlWithFarNextUpdateIsCurrent) {
  use_crls({issuing_.crl_pem({.next_update_offset = std::chrono::hours(24 * 366 * 374)})});  // year ~2400
  auto leaf = issuing_.issue_leaf(3, "leaf");
  EXPECT_EQ(RevocationChecker::create(tls_)->check(leaf.get(), issuing_.cert()).status, RevocationStatus::good);
}

TEST_F(RevocationCheckerTest, NotConfiguredMeansGoodButMissingCrlMeansUnavailable) {
  auto leaf = issuing_.issue_leaf(5, "leaf");
  EXPECT_EQ(RevocationChecker::create(tls_)->check(leaf.get(), issuing_.cert()).status, RevocationStatus::good);

  use_crls({root_.crl_pem({})});  // covers the issuing CA, not its leaves
  auto answer = RevocationChecker::create(tls_)->check(leaf.get(), issuing_.cert());
  EXPECT_EQ(answer.status, RevocationStatus::unavailable);
  EXPECT_NE(answer.reason.find("no CRL for issuer CN=Test Issuing"), std::string::npos) << answer.reason;

  tls_.crl.clear();
  tls_.revocation.ocsp = true;
  EXPECT_EQ(RevocationChecker::create(tls_)->check(leaf.get(), issuing_.cert()).status,
            RevocationStatus::unavailable);
}

TEST_F(RevocationCheckerTest, CrlOfAnotherKeyWithTheSameNameDoesNotCover) {
  TestCa renewed("Test Issuing", &root_);  // same subject, new key
  use_crls({issuing_.crl_pem({})});
  auto checker = RevocationChecker::create(tls_);
  auto leaf = renewed.issue_leaf(4, "leaf");
  EXPECT_EQ(checker->check(leaf.get(), renewed.cert()).status, RevocationStatus::unavailable);
}

TEST_F(RevocationCheckerTest, DeltaCrlAddsAndRemovesEntries) {
  use_crls({issuing_.crl_pem({.revoked = {{5, certificate_hold}, {10, key_compromise}}, .number = 10}),
            issuing_.crl_pem({.revoked = {{5, remove_from_crl}, {6, key_compromise}}, .number = 11, .delta_base = 10})});
  auto checker = RevocationChecker::create(tls_);
  auto released = issuing_.issue_leaf(5, "released");
  auto newly = issuing_.issue_leaf(6, "newly");
  auto old = issuing_.issue_leaf(10, "old");
  EXPECT_EQ(checker->check(released.get(), issuing_.cert()).status, RevocationStatus::good);
  EXPECT_EQ(checker->check(newly.get(), issuing_.cert()).status, RevocationStatus::revoked);
  EXPECT_EQ(checker->check(old.get(), issuing_.cert()).status, RevocationStatus::revoked);
  auto info = checker->loaded();
  ASSERT_EQ(info.size(), 2u);
  EXPECT_FALSE(info[0].delta);
  EXPECT_TRUE(info[1].delta);
  EXPECT_EQ(info[0].entries, 2u);
}

TEST_F(RevocationCheckerTest, DeltaForAnOlderBaseIsIgnoredAndNewestBaseWins) {
  use_crls({issuing_.crl_pem({.revoked = {{5}}, .number = 20}),
            issuing_.crl_pem({.revoked = {{5}, {6}}, .number = 21}),
            issuing_.crl_pem({.revoked = {{7}}, .number = 21, .delta_base = 20})});  // not newer than base 21
  auto checker = RevocationChecker::create(tls_);
  auto six = issuing_.issue_leaf(6, "six");
  auto seven = issuing_.issue_leaf(7, "seven");
  EXPECT_EQ(checker->check(six.get(), issuing_.cert()).status, RevocationStatus::revoked);
  EXPECT_EQ(checker->check(seven.get(), issuing_.cert()).status, RevocationStatus::good);
  EXPECT_EQ(checker->loaded().size(), 1u);
}

TEST_F(RevocationCheckerTest, ExpiredDeltaMakesTheAnswerUnavailable) {
  use_crls({issuing_.crl_pem({.number = 30}),
            issuing_.crl_pem({.this_update_offset = -7200s, .next_update_offset = -60s, .number = 31, .delta_base = 30})});
  auto leaf = issuing_.issue_leaf(2, "leaf");
  EXPECT_EQ(RevocationChecker::create(tls_)->check(leaf.get(), issuing_.cert()).status,
            RevocationStatus::unavailable);
}

TEST_F(RevocationCheckerTest, LoadedDescribesEachCrl) {
  use_crls({issuing_.crl_pem({.revoked = {{1}, {2}, {3}}}), root_.crl_pem({})});
  auto checker = RevocationChecker::create(tls_);
  auto info = checker->loaded();
  ASSERT_EQ(info.size(), 2u);
  EXPECT_EQ(info[0].issuer, "CN=Test Issuing");
  EXPECT_EQ(info[0].entries, 3u);
  EXPECT_EQ(info[0].source, tls_.crl[0].string());
  ASSERT_TRUE(info[0].next_update.has_value());
  EXPECT_GT(*info[0].next_update, info[0].this_update);
  EXPECT_EQ(info[1].issuer, "CN=Test Root");
  EXPECT_GE(checker->generation(), 1u);
}

// Start-up refusals: each names the key and the file.
TEST_F(RevocationCheckerTest, GarbageFilesAreConfigErrors) {
  const std::string der = issuing_.crl_der({});
  const std::string pem = issuing_.crl_pem({});
  const std::vector<std::pair<std::string, std::string>> hostile = {
      {"", "empty"},
      {"not a crl at all\n", "neither PEM nor DER"},
      {std::string("\x30\x82\xff\xff", 4), "neither PEM nor DER"},
      {der.substr(0, der.size() / 2), "neither PEM nor DER"},
      {der + "X", "trailing bytes"},
      {"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", "PEM block"},
      {pem.substr(0, pem.size() - 40), "PEM block"},
  };
  for (const auto& [content, expected] : hostile) {
    use_crls({issuing_.crl_pem({}), content});
    auto error = create_error();
    EXPECT_NE(error.find("tls.crl[1]"), std::string::npos) << error;
    EXPECT_NE(error.find(tls_.crl[1].string()), std::string::npos) << error;
    EXPECT_NE(error.find(expected), std::string::npos) << error;
  }
}

TEST_F(RevocationCheckerTest, UntrustedOrForgedCrlsAreConfigErrors) {
  TestCa rogue("Rogue CA");
  use_crls({rogue.crl_pem({})});
  EXPECT_NE(create_error().find("not among the trusted client CAs"), std::string::npos);

  TestCa impostor("Test Issuing");  // same name as the trusted CA, different key
  use_crls({impostor.crl_pem({})});
  EXPECT_NE(create_error().find("signature does not verify"), std::string::npos);

  TestCa no_crl_sign("No CRL Sign", &root_, /*crl_sign=*/false);
  tls_.client_ca = dir_.write("bundle2.pem", no_crl_sign.cert_pem() + root_.cert_pem());
  use_crls({no_crl_sign.crl_pem({})});
  EXPECT_NE(create_error().find("signature does not verify"), std::string::npos);
}

TEST_F(RevocationCheckerTest, OversizedAndMissingFilesAreConfigErrors) {
  use_crls({issuing_.crl_pem({.revoked = {{1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}, {10}, {11}, {12}}})});
  tls_.revocation.max_crl_bytes = 100;
  EXPECT_NE(create_error().find("max_crl_bytes"), std::string::npos);

  tls_.crl = {dir_.path() / "missing.crl"};
  auto error = create_error();
  EXPECT_NE(error.find("tls.crl[0]"), std::string::npos) << error;
  EXPECT_NE(error.find("cannot read"), std::string::npos) << error;
}

TEST_F(RevocationCheckerTest, PartitionedOrIndirectCrlIsRefused) {
  // Such a CRL does not cover every device certificate of its CA: trusting it would answer "good" wrongly.
  for (const char* scope : {"critical,onlyCA:TRUE", "critical,indirectCRL:TRUE", "critical,onlysomereasons:keyCompromise"}) {
    use_crls({issuing_.crl_pem({.issuing_distribution_point = scope})});
    EXPECT_NE(create_error().find("not supported"), std::string::npos) << scope;
  }
  use_crls({issuing_.crl_pem({.issuing_distribution_point = "critical,onlyuser:TRUE"})});
  EXPECT_EQ(create_error(), "no error");
}

}  // namespace
}  // namespace easedge::auth
