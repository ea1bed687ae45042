// KB5014754 decisions for each StrongCertificateBindingEnforcement mode.
#include "mapping/strong_binding.h"

#include <gtest/gtest.h>

namespace easedge::mapping {
namespace {

using config::StrongBinding;
using namespace std::chrono_literals;
using State = CertificateSid::State;

const std::string sid = "S-1-5-21-1004336348-1177238915-682003330-1104";
const std::string other_sid = "S-1-5-21-1004336348-1177238915-682003330-1105";
const auto created = std::chrono::system_clock::from_time_t(1700000000);

BindingEvidence weak_upn() {
  return {"upn", false, {State::absent, ""}, sid, created + 24h, created};
}

TEST(StrongBinding, StrongAltSecurityIdentityIsStrongInEveryMode) {
  BindingEvidence e = weak_upn();
  e.method = "altsec:issuer-serial";
  e.strong_method = true;
  for (auto mode : {StrongBinding::disabled, StrongBinding::compatibility, StrongBinding::full}) {
    auto v = check_strong_binding(mode, e, 0s);
    EXPECT_TRUE(v.allowed) << to_string(mode);
    EXPECT_TRUE(v.strong);
    EXPECT_EQ(v.reason, "");
  }
}

TEST(StrongBinding, MatchingSidMakesAWeakMappingStrong) {
  BindingEvidence e = weak_upn();
  e.certificate_sid = {State::present, sid};
  auto v = check_strong_binding(StrongBinding::full, e, 0s);
  EXPECT_TRUE(v.allowed);
  EXPECT_TRUE(v.strong);
}

TEST(StrongBinding, FullRefusesWeakMappings) {
  auto v = check_strong_binding(StrongBinding::full, weak_upn(), 0s);
  EXPECT_FALSE(v.allowed);
  EXPECT_FALSE(v.strong);
  EXPECT_NE(v.reason.find("weak mapping (upn) refused"), std::string::npos) << v.reason;
}

TEST(StrongBinding, CompatibilityAllowsWeakMappingOfCertificateNewerThanAccount) {
  auto v = check_strong_binding(StrongBinding::compatibility, weak_upn(), 0s);
  EXPECT_TRUE(v.allowed);
  EXPECT_FALSE(v.strong);
  EXPECT_NE(v.reason.find("compatibility"), std::string::npos);
}

TEST(StrongBinding, CompatibilityRefusesCertificateOlderThanAccountUnlessCompensated) {
  BindingEvidence e = weak_upn();
  e.not_before = created - 10min;
  auto v = check_strong_binding(StrongBinding::compatibility, e, 0s);
  EXPECT_FALSE(v.allowed);
  EXPECT_NE(v.reason.find("predates the account"), std::string::npos) << v.reason;
  EXPECT_NE(v.reason.find("2023-11-14T22:13:20Z"), std::string::npos) << v.reason;
  EXPECT_TRUE(check_strong_binding(StrongBinding::compatibility, e, 10min).allowed);
  EXPECT_FALSE(check_strong_binding(StrongBinding::compatibility, e, 9min).allowed);
  // A strong mapping is not subject to the age check.
  e.strong_method = true;
  EXPECT_TRUE(check_strong_binding(StrongBinding::compatibility, e, 0s).allowed);
  // Unknown whenCreated: nothing to compare.
  e.strong_method = false;
  e.when_created.reset();
  EXPECT_TRUE(check_strong_binding(StrongBinding::compatibility, e, 0s).allowed);
}

TEST(StrongBinding, SidMismatchDeniesInCompatibilityAndFullEvenForStrongValues) {
  for (auto state : {State::present, State::malformed, State::conflict}) {
    BindingEvidence e = weak_upn();
    e.certificate_sid = {state, other_sid};
    e.strong_method = true;
    for (auto mode : {StrongBinding::compatibility, StrongBinding::full}) {
      auto v = check_strong_binding(mode, e, 0s);
      EXPECT_FALSE(v.allowed) << to_string(mode) << " " << static_cast<int>(state);
    }
    EXPECT_TRUE(check_strong_binding(StrongBinding::disabled, e, 0s).allowed);
  }
}

TEST(StrongBinding, CertificateSidWithoutAccountSidDenies) {
  BindingEvidence e = weak_upn();
  e.certificate_sid = {State::present, sid};
  e.account_sid = "";
  auto v = check_strong_binding(StrongBinding::compatibility, e, 0s);
  EXPECT_FALSE(v.allowed);
  EXPECT_NE(v.reason.find("no objectSid"), std::string::npos);
}

TEST(StrongBinding, DisabledAllowsEverythingButSaysWhenWeak) {
  auto v = check_strong_binding(StrongBinding::disabled, weak_upn(), 0s);
  EXPECT_TRUE(v.allowed);
  EXPECT_FALSE(v.strong);
  EXPECT_NE(v.reason.find("disabled"), std::string::npos);
}

}  // namespace
}  // namespace easedge::mapping
