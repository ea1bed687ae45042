// Admission: the order of the approval steps, the refusal each answer becomes, late answers and cancellation,
// with fakes for the revocation checker and the account mapper; what a KDC answer means (refusal_for_token).
#include "proxy/admission.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <gtest/gtest.h>

#include <openssl/x509.h>

#include <string>
#include <vector>

namespace easedge::proxy {
namespace {

// Each fake keeps the completion it was handed, so a test answers when (and whether) it wants to.
struct FakeRevocation : auth::RevocationSource {
  std::uint64_t generation() const override { return generation_now; }
  void async_check(X509*, X509*, std::function<void(auth::RevocationAnswer)> done) override {
    pending = std::move(done);
    ++checks;
  }
  std::uint64_t generation_now = 1;
  std::function<void(auth::RevocationAnswer)> pending;
  int checks = 0;
};

struct FakeMapper : mapping::AccountMapper {
  void map(const mapping::CertificateRef&, std::function<void(mapping::MapResult)> done) override {
    pending = std::move(done);
  }
  mapping::MappingStats stats() const override { return {}; }
  std::function<void(mapping::MapResult)> pending;
};

const std::string sync_target = "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=D1&DeviceType=iPhone";

class AdmissionTest : public ::testing::Test {
protected:
  AdmissionTest() {
    certificate_->status = auth::ChainStatus::valid;
    certificate_->leaf = auth::share(auth::OwnedX509(X509_new()));
    certificate_->issuer = auth::share(auth::OwnedX509(X509_new()));
    certificate_->subject = "CN=WorkspaceONEUEM.alice";
    certificate_->upn = "alice@corp.example.test";
  }

  // Starts an admission of a bodiless POST to `target` and runs what is ready.
  void start(const std::string& target = sync_target, const std::string& fields = "Content-Length: 0\r\n") {
    policy_ = std::make_unique<eas::Policy>(config_.eas);
    AdmissionContext context{config_, *policy_, revocation_, use_mapper_ ? &mapper_ : nullptr};
    admission_ = std::make_shared<Admission>(
        context, io_.get_executor(), certificate_, "192.0.2.7", [this] { ++waits_; },
        [this](AdmissionOutcome&& outcome) { outcomes_.push_back(std::move(outcome)); });
    again(target, fields);
  }

  // The next request on the same connection.
  void again(const std::string& target = sync_target, const std::string& fields = "Content-Length: 0\r\n") {
    std::string text = "POST " + target + " HTTP/1.1\r\nHost: mail.example.test\r\n" + fields + "\r\n";
    parser_ = std::make_unique<RequestHeadParser<http::empty_body>>();
    parser_->eager(false);
    boost::beast::error_code ec;
    parser_->put(boost::asio::buffer(text), ec);
    ASSERT_FALSE(ec) << ec.message();
    admission_->start(admission_, parser_->get(), parser_->chunked(), parser_->content_length());
    run();
  }

  void run() {
    io_.restart();
    io_.run();
  }

  const AdmissionOutcome& only_outcome() {
    EXPECT_EQ(outcomes_.size(), 1u);
    return outcomes_.back();
  }

  // First, so it goes last: an answer still pending in the fakes at the end posts its release to it.
  boost::asio::io_context io_;
  config::Config config_;
  std::unique_ptr<eas::Policy> policy_;
  FakeRevocation revocation_;
  FakeMapper mapper_;
  bool use_mapper_ = true;
  std::shared_ptr<auth::ClientCertificate> certificate_ = std::make_shared<auth::ClientCertificate>();
  std::unique_ptr<RequestHeadParser<http::empty_body>> parser_;
  std::shared_ptr<Admission> admission_;
  int waits_ = 0;
  std::vector<AdmissionOutcome> outcomes_;
};

mapping::MapResult mapped_alice() {
  mapping::MapResult result;
  result.status = mapping::MapStatus::mapped;
  result.account = mapping::MappedAccount{.dn = "CN=alice",
                                          .sam_account_name = "alice",
                                          .user_principal_name = "alice@corp.example.test",
                                          .object_sid = ""};
  return result;
}

TEST_F(AdmissionTest, AdmitsAfterRevocationAndMappingInThatOrder) {
  start();
  ASSERT_TRUE(revocation_.pending);
  EXPECT_FALSE(mapper_.pending);  // nothing is mapped before revocation answered
  revocation_.pending({auth::RevocationStatus::good, "", false});
  run();
  ASSERT_TRUE(mapper_.pending);
  mapper_.pending(mapped_alice());
  run();
  EXPECT_EQ(waits_, 2);  // the connection armed its timer for each answer
  const auto& outcome = only_outcome();
  EXPECT_FALSE(outcome.refusal) << outcome.detail;
  EXPECT_EQ(outcome.identity.user, "alice@corp.example.test");
  EXPECT_EQ(outcome.identity.authorization, "");  // a Kerberos token is asked for the chosen server, later
  EXPECT_EQ(outcome.identity.client_address, "192.0.2.7");
  EXPECT_EQ(outcome.identity.certificate, certificate_.get());
  EXPECT_EQ(outcome.eas.device_id, "D1");
}

TEST_F(AdmissionTest, ShapeIsCheckedBeforeTheCertificate) {
  certificate_->status = auth::ChainStatus::expired;
  start("/ecp/");
  EXPECT_EQ(only_outcome().refusal, Refusal::not_found);
}

struct CertificateCase {
  auth::ChainStatus status;
  Refusal refusal;
};

class CertificateVerdicts : public AdmissionTest, public ::testing::WithParamInterface<CertificateCase> {};

TEST_P(CertificateVerdicts, BecomeTheirRefusalBeforeAnyAuthorityIsAsked) {
  certificate_->status = GetParam().status;
  start();
  EXPECT_EQ(only_outcome().refusal, GetParam().refusal);
  EXPECT_EQ(revocation_.checks, 0);
  EXPECT_FALSE(mapper_.pending);
}

INSTANTIATE_TEST_SUITE_P(
    Admission, CertificateVerdicts,
    ::testing::Values(CertificateCase{auth::ChainStatus::absent, Refusal::no_client_certificate},
                      CertificateCase{auth::ChainStatus::expired, Refusal::certificate_expired},
                      CertificateCase{auth::ChainStatus::not_yet_valid, Refusal::certificate_not_yet_valid},
                      CertificateCase{auth::ChainStatus::wrong_usage, Refusal::certificate_wrong_usage},
                      CertificateCase{auth::ChainStatus::untrusted, Refusal::certificate_untrusted}));

TEST_F(AdmissionTest, MalformedQueryIsRefusedAfterTheCertificateChecks) {
  start("/Microsoft-Server-ActiveSync?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob2!");  // broken base64
  ASSERT_TRUE(revocation_.pending);  // the certificate comes first
  revocation_.pending({auth::RevocationStatus::good, "", false});
  run();
  EXPECT_EQ(only_outcome().refusal, Refusal::malformed_eas_query);
  EXPECT_FALSE(mapper_.pending);
}

struct RevocationCase {
  auth::RevocationAnswer answer;
  std::optional<Refusal> refusal;
};

class RevocationAnswers : public AdmissionTest, public ::testing::WithParamInterface<RevocationCase> {};

TEST_P(RevocationAnswers, BecomeTheirRefusal) {
  use_mapper_ = false;
  start();
  revocation_.pending(GetParam().answer);
  run();
  EXPECT_EQ(only_outcome().refusal, GetParam().refusal);
}

INSTANTIATE_TEST_SUITE_P(
    Admission, RevocationAnswers,
    ::testing::Values(RevocationCase{{auth::RevocationStatus::revoked, "serial 1A", false}, Refusal::certificate_revoked},
                      RevocationCase{{auth::RevocationStatus::unavailable, "down", false}, Refusal::revocation_unavailable},
                      RevocationCase{{auth::RevocationStatus::unavailable, "down", true}, std::nullopt},
                      RevocationCase{{auth::RevocationStatus::good, "", false}, std::nullopt}));

TEST_F(AdmissionTest, GoodRevocationHoldsUntilTheDataChanges) {
  use_mapper_ = false;
  start();
  revocation_.pending({auth::RevocationStatus::good, "", false});
  run();
  again();
  EXPECT_EQ(revocation_.checks, 1);
  EXPECT_EQ(outcomes_.size(), 2u);
  revocation_.generation_now = 2;
  again();
  EXPECT_EQ(revocation_.checks, 2);
}

struct MappingCase {
  mapping::MapStatus status;
  Refusal refusal;
};

class MappingAnswers : public AdmissionTest, public ::testing::WithParamInterface<MappingCase> {};

TEST_P(MappingAnswers, BecomeTheirRefusal) {
  start();
  revocation_.pending({auth::RevocationStatus::good, "", false});
  run();
  mapper_.pending({.status = GetParam().status, .account = {}, .method = "", .strong = false, .reason = "why"});
  run();
  EXPECT_EQ(only_outcome().refusal, GetParam().refusal);
  EXPECT_EQ(only_outcome().detail, "why");
}

INSTANTIATE_TEST_SUITE_P(Admission, MappingAnswers,
                         ::testing::Values(MappingCase{mapping::MapStatus::not_mapped, Refusal::certificate_unmappable},
                                           MappingCase{mapping::MapStatus::directory_unavailable,
                                                       Refusal::directory_unavailable}));

TEST_F(AdmissionTest, WithoutMapperTheUpnIsTheAccountAndPolicyChecksIt) {
  use_mapper_ = false;
  config_.eas.require_user_match = true;
  start("/Microsoft-Server-ActiveSync?Cmd=Sync&User=bob&DeviceId=D1&DeviceType=iPhone");
  revocation_.pending({auth::RevocationStatus::good, "", false});
  run();
  const auto& outcome = only_outcome();
  EXPECT_EQ(outcome.refusal, Refusal::user_mismatch);
  EXPECT_EQ(outcome.identity.user, "alice@corp.example.test");  // the log line names who it was
}

TEST_F(AdmissionTest, WithoutMapperACertificateWithoutUpnIsUnmappable) {
  use_mapper_ = false;
  certificate_->upn.clear();
  start();
  revocation_.pending({auth::RevocationStatus::good, "", false});
  run();
  EXPECT_EQ(only_outcome().refusal, Refusal::certificate_unmappable);
}

struct TokenCase {
  auth::kerberos::FailureKind failure;
  Refusal refusal;
};

class TokenFailures : public ::testing::TestWithParam<TokenCase> {};

TEST_P(TokenFailures, BecomeTheirRefusal) {
  auth::kerberos::TokenResult no_token(auth::kerberos::TokenFailure{GetParam().failure, "kdc says no"});
  EXPECT_EQ(refusal_for_token(no_token), GetParam().refusal);
}

TEST(TokenAnswer, ATokenIsNoRefusal) {
  EXPECT_FALSE(refusal_for_token(std::string("Negotiate abc")));
}

INSTANTIATE_TEST_SUITE_P(
    Admission, TokenFailures,
    ::testing::Values(TokenCase{auth::kerberos::FailureKind::user_refused, Refusal::account_refused_by_kdc},
                      TokenCase{auth::kerberos::FailureKind::kdc_unavailable, Refusal::kdc_unavailable},
                      TokenCase{auth::kerberos::FailureKind::setup_error, Refusal::delegation_misconfigured}));

TEST_F(AdmissionTest, ExpiryGivesTheWaitingStepsRefusalAndDropsTheLateAnswer) {
  start();
  revocation_.pending({auth::RevocationStatus::good, "", false});
  run();
  ASSERT_TRUE(mapper_.pending);
  admission_->expire();
  EXPECT_EQ(only_outcome().refusal, Refusal::directory_unavailable);
  mapper_.pending(mapped_alice());
  run();
  EXPECT_EQ(outcomes_.size(), 1u);
}

TEST_F(AdmissionTest, CancelDropsThePendingAnswerAndReleasesTheOwnerOnTheExecutor) {
  start();
  ASSERT_TRUE(revocation_.pending);
  admission_->cancel();
  std::weak_ptr<Admission> watched = admission_;
  admission_.reset();
  EXPECT_FALSE(watched.expired());  // the pending completion still holds it
  revocation_.pending({auth::RevocationStatus::good, "", false});
  revocation_.pending = nullptr;
  EXPECT_FALSE(watched.expired());  // released only on the executor, never on the answering thread
  run();
  EXPECT_TRUE(watched.expired());
  EXPECT_TRUE(outcomes_.empty());
}

}  // namespace
}  // namespace easedge::proxy
