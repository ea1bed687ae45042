// The failure table: each krb5 error in each delegation step maps to the right HTTP outcome and fix.
#include "auth/kerberos/classify.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <krb5/krb5.h>

#include <cerrno>

namespace easedge::auth::kerberos {
namespace {

using ::testing::HasSubstr;

const SetupNames names{"easproxy@CORP.EXAMPLE.TEST", "HTTP/exchange.corp.example.test"};

constexpr Stage all_stages[] = {Stage::keytab, Stage::service_ticket, Stage::s4u2self, Stage::s4u2proxy, Stage::token};

TEST(ClassifyTest, UnknownOrDisabledUserIsRefusedAtProtocolTransition) {
  for (auto code : {KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN, KRB5KDC_ERR_CLIENT_REVOKED, KRB5KDC_ERR_POLICY,
                    KRB5KDC_ERR_KEY_EXP, KRB5KDC_ERR_WRONG_REALM}) {
    Diagnosis d = classify(Stage::s4u2self, code, names);
    EXPECT_EQ(d.kind, FailureKind::user_refused) << code;
    EXPECT_TRUE(d.fix.empty()) << "nothing for the operator to change: " << d.fix;
  }
}

TEST(ClassifyTest, TheSameCodesForTheServiceAccountAreSetupErrors) {
  Diagnosis unknown = classify(Stage::service_ticket, KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN, names);
  EXPECT_EQ(unknown.kind, FailureKind::setup_error);
  EXPECT_THAT(unknown.cause, HasSubstr("easproxy@CORP.EXAMPLE.TEST"));
  Diagnosis disabled = classify(Stage::service_ticket, KRB5KDC_ERR_CLIENT_REVOKED, names);
  EXPECT_EQ(disabled.kind, FailureKind::setup_error);
  EXPECT_THAT(disabled.fix, HasSubstr("Enable-ADAccount easproxy"));
}

TEST(ClassifyTest, SpnOutsideTheDelegationListNamesAccountAndSpn) {
  Diagnosis d = classify(Stage::s4u2proxy, KRB5KDC_ERR_BADOPTION, names);
  EXPECT_EQ(d.kind, FailureKind::setup_error);
  EXPECT_THAT(d.cause, HasSubstr("msDS-AllowedToDelegateTo"));
  EXPECT_THAT(d.fix, HasSubstr("Set-ADUser easproxy -Add @{'msDS-AllowedToDelegateTo'='HTTP/exchange.corp.example.test'}"));
  EXPECT_THAT(d.fix, HasSubstr("Trust this user for delegation to specified services only"));
}

TEST(ClassifyTest, NonForwardableEvidenceAsksForProtocolTransition) {
  Diagnosis d = classify(Stage::s4u2proxy, KRB5_TKT_NOT_FORWARDABLE, names);
  EXPECT_EQ(d.kind, FailureKind::setup_error);
  EXPECT_THAT(d.fix, HasSubstr("Set-ADAccountControl easproxy -TrustedToAuthForDelegation $true"));
  EXPECT_THAT(d.fix, HasSubstr("Use any authentication protocol"));
}

TEST(ClassifyTest, UnknownSpnPointsAtSetspn) {
  Diagnosis d = classify(Stage::s4u2proxy, KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN, names);
  EXPECT_EQ(d.kind, FailureKind::setup_error);
  EXPECT_THAT(d.fix, HasSubstr("setspn -Q HTTP/exchange.corp.example.test"));
  // For S4U2Self the unknown service is the proxy's own account: it needs an SPN.
  EXPECT_THAT(classify(Stage::s4u2self, KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN, names).fix, HasSubstr("setspn -S"));
}

TEST(ClassifyTest, UnreachableKdcIsTemporaryInEveryStep) {
  for (Stage stage : all_stages) {
    for (auto code : {KRB5_KDC_UNREACH, KRB5_REALM_CANT_RESOLVE, KRB5KDC_ERR_SVC_UNAVAILABLE}) {
      EXPECT_EQ(classify(stage, code, names).kind, FailureKind::kdc_unavailable) << to_string(stage) << " " << code;
    }
  }
}

TEST(ClassifyTest, ClockSkewAndEncryptionTypesAreSetupErrorsInEveryStep) {
  for (Stage stage : all_stages) {
    for (auto code : {KRB5KRB_AP_ERR_SKEW, KRB5_KDCREP_SKEW}) {
      Diagnosis d = classify(stage, code, names);
      EXPECT_EQ(d.kind, FailureKind::setup_error);
      EXPECT_THAT(d.fix, HasSubstr("clocks"));
    }
    Diagnosis enctypes = classify(stage, KRB5KDC_ERR_ETYPE_NOSUPP, names);
    EXPECT_EQ(enctypes.kind, FailureKind::setup_error);
    EXPECT_THAT(enctypes.fix, HasSubstr("msDS-SupportedEncryptionTypes'=24"));
  }
}

TEST(ClassifyTest, StaleKeytabAsksForAFreshExportWithItsKvno) {
  for (auto code : {KRB5KDC_ERR_PREAUTH_FAILED, KRB5KRB_AP_ERR_BAD_INTEGRITY, KRB5_PREAUTH_FAILED}) {
    Diagnosis d = classify(Stage::service_ticket, code, names);
    EXPECT_EQ(d.kind, FailureKind::setup_error);
    EXPECT_THAT(d.cause, HasSubstr("kvno"));
    EXPECT_THAT(d.fix, HasSubstr("ktpass /princ easproxy@CORP.EXAMPLE.TEST"));
    EXPECT_THAT(d.fix, HasSubstr("msDS-KeyVersionNumber"));
  }
}

TEST(ClassifyTest, KeytabFileProblems) {
  EXPECT_THAT(classify(Stage::keytab, ENOENT, names).cause, HasSubstr("does not exist"));
  EXPECT_THAT(classify(Stage::keytab, EACCES, names).cause, HasSubstr("not readable"));
  EXPECT_THAT(classify(Stage::keytab, KRB5_KT_NOTFOUND, names).cause, HasSubstr("no key for easproxy@CORP.EXAMPLE.TEST"));
  // The AS exchange reports a missing key the same way: still a keytab problem.
  EXPECT_THAT(classify(Stage::service_ticket, KRB5_KT_NOTFOUND, names).cause, HasSubstr("no key for"));
}

TEST(ClassifyTest, UnknownCodesAreSetupErrorsThatPointAtKcdCheck) {
  EXPECT_THAT(classify(Stage::keytab, 12345, names).fix, HasSubstr("export the keytab again"));
  for (Stage stage : {Stage::service_ticket, Stage::s4u2self, Stage::s4u2proxy, Stage::token}) {
    Diagnosis d = classify(stage, 12345, names);
    EXPECT_EQ(d.kind, FailureKind::setup_error);
    EXPECT_THAT(d.fix, HasSubstr("kcd-check"));
  }
}

TEST(ClassifyTest, AccountIsThePrincipalWithoutRealm) {
  EXPECT_EQ(names.account(), "easproxy");
  EXPECT_EQ((SetupNames{"svc", "HTTP/x"}).account(), "svc");
}

}  // namespace
}  // namespace easedge::auth::kerberos
