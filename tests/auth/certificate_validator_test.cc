// Unit tests for CertificateValidator: the chain verdict per certificate, its identity fields and its cache.
#include "auth/certificate_validator.h"

#include "tests/support/test_pki.h"

#include <gtest/gtest.h>

namespace easedge::auth {
namespace {

using easedge::testing::CertSpec;
using easedge::testing::Issued;

constexpr long day = 86400;

class CertificateValidatorTest : public ::testing::Test {
protected:
  CertificateValidatorTest() : root_(easedge::testing::make_ca(easedge::testing::common_name("Test Device CA"))) {
    tls_.client_ca = dir_.write("client-ca.pem", easedge::testing::to_pem(root_.cert.get()));
  }

  // A device certificate issued by `ca` (the trusted root unless said otherwise).
  Issued device(CertSpec spec, const Issued* ca = nullptr) {
    if (spec.subject.empty()) spec.subject = easedge::testing::common_name("WorkspaceONEUEM.alice");
    if (spec.extensions.empty()) spec.extensions = {{"extendedKeyUsage", "clientAuth"}};
    return easedge::testing::issue(spec, ca ? *ca : root_);
  }

  CertificateValidator validator(std::size_t cache_entries = 16) {
    return CertificateValidator(tls_, dir_.path() / "easedge.yaml", cache_entries);
  }

  easedge::testing::TempDir dir_{"easedge-validator"};
  Issued root_;
  config::TlsConfig tls_;
};

struct StatusCase {
  const char* name;
  long not_before_offset;
  long lifetime;
  const char* extended_key_usage;
  bool trusted_issuer;
  ChainStatus expected;
};

class ChainStatusTest : public CertificateValidatorTest, public ::testing::WithParamInterface<StatusCase> {};

TEST_P(ChainStatusTest, VerdictFollowsTheChain) {
  const auto& c = GetParam();
  CertSpec spec;
  spec.not_before_offset = c.not_before_offset;
  spec.lifetime = c.lifetime;
  spec.extensions = {{"extendedKeyUsage", c.extended_key_usage}};
  auto rogue = easedge::testing::make_ca(easedge::testing::common_name("Test Device CA"));  // same name, other key
  auto cert = device(spec, c.trusted_issuer ? nullptr : &rogue);
  auto v = validator();
  auto verdict = v.verify(cert.cert.get(), nullptr);
  EXPECT_EQ(verdict->status, c.expected);
  EXPECT_EQ(verdict->detail.empty(), c.expected == ChainStatus::valid) << verdict->detail;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ChainStatusTest,
    ::testing::Values(StatusCase{"valid", -3600, day, "clientAuth", true, ChainStatus::valid},
                      StatusCase{"expired", -2 * day, day, "clientAuth", true, ChainStatus::expired},
                      StatusCase{"not_yet_valid", day, day, "clientAuth", true, ChainStatus::not_yet_valid},
                      StatusCase{"server_only", -3600, day, "serverAuth", true, ChainStatus::wrong_usage},
                      StatusCase{"untrusted", -3600, day, "clientAuth", false, ChainStatus::untrusted}),
    [](const ::testing::TestParamInfo<StatusCase>& info) { return std::string(info.param.name); });

TEST_F(CertificateValidatorTest, VerdictCarriesTheIdentityAndTheIssuer) {
  CertSpec spec;
  spec.upn = "alice@corp.example.test";
  spec.lifetime = 7200;  // ends before the CA does
  auto cert = device(spec);
  auto verdict = validator().verify(cert.cert.get(), nullptr);
  ASSERT_EQ(verdict->status, ChainStatus::valid);
  EXPECT_EQ(verdict->subject, "CN=WorkspaceONEUEM.alice");
  EXPECT_EQ(verdict->upn, "alice@corp.example.test");
  EXPECT_EQ(verdict->sha256_hex, sha256_hex_of(cert.cert.get()));
  EXPECT_EQ(verdict->sha256_hex.size(), 64u);
  EXPECT_EQ(verdict->leaf.get(), cert.cert.get());
  ASSERT_NE(verdict->issuer, nullptr);
  EXPECT_EQ(X509_cmp(verdict->issuer.get(), root_.cert.get()), 0);
  // The earliest notAfter on the chain: the device's.
  EXPECT_EQ(verdict->valid_until, time_of(X509_get0_notAfter(cert.cert.get())));
}

TEST_F(CertificateValidatorTest, SameCertificateIsVerifiedOnceWhileCached) {
  auto cert = device({});
  auto cached = validator();
  EXPECT_EQ(cached.verify(cert.cert.get(), nullptr), cached.verify(cert.cert.get(), nullptr));
  auto uncached = validator(0);
  EXPECT_NE(uncached.verify(cert.cert.get(), nullptr), uncached.verify(cert.cert.get(), nullptr));
}

TEST_F(CertificateValidatorTest, CacheKeepsTheMostRecentlyUsedEntries) {
  auto v = validator(2);
  auto a = device({});
  auto b = device({});
  auto c = device({});
  auto first_a = v.verify(a.cert.get(), nullptr);
  v.verify(b.cert.get(), nullptr);
  EXPECT_EQ(v.verify(a.cert.get(), nullptr), first_a);  // a is now the most recent
  v.verify(c.cert.get(), nullptr);                      // evicts b, keeps a
  EXPECT_EQ(v.verify(a.cert.get(), nullptr), first_a);
}

TEST_F(CertificateValidatorTest, ReportsTheTrustedCas) {
  auto v = validator();
  EXPECT_EQ(v.trusted_subjects(), std::vector<std::string>{"CN=Test Device CA"});
  STACK_OF(X509_NAME)* names = v.client_ca_names();
  EXPECT_EQ(sk_X509_NAME_num(names), 1);
  sk_X509_NAME_pop_free(names, X509_NAME_free);
}

TEST_F(CertificateValidatorTest, AClientCaFileWithoutCertificatesIsAConfigErrorNamingTheKey) {
  tls_.client_ca = dir_.write("empty.pem", "not a certificate\n");
  try {
    validator();
    FAIL() << "expected a ConfigError";
  } catch (const config::ConfigError& e) {
    EXPECT_EQ(e.key(), "tls.client_ca");
    EXPECT_NE(std::string(e.what()).find("no PEM certificate"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace easedge::auth
