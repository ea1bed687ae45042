// Unit tests for the OpenSSL contexts: what the server context loads and reports, and the config errors it raises.
#include "auth/tls_context.h"

#include "tests/support/test_pki.h"

#include <gtest/gtest.h>

namespace easedge::auth {
namespace {

class TlsContextTest : public ::testing::Test {
protected:
  TlsContextTest()
      : ca_(easedge::testing::make_ca(easedge::testing::common_name("Test Issuing CA"))),
        server_(issue_server("mail.corp.example.test")) {
    config_.source_file = dir_.path() / "easedge.yaml";
    config_.tls.certificate = dir_.write("server.pem", easedge::testing::to_pem(server_.cert.get()));
    config_.tls.private_key = dir_.write("server.key", easedge::testing::to_pem(server_.key.get()));
    config_.tls.client_ca = dir_.write("client-ca.pem", easedge::testing::to_pem(ca_.cert.get()));
  }

  easedge::testing::Issued issue_server(const std::string& name) {
    easedge::testing::CertSpec spec;
    spec.subject = easedge::testing::common_name(name);
    spec.extensions = {{"extendedKeyUsage", "serverAuth"}};
    return easedge::testing::issue(spec, ca_);
  }

  // The ConfigError's key when making the server context fails, or "" when it does not.
  std::string server_context_error_key() {
    CertificateValidator validator(config_.tls, config_.source_file, 0);
    try {
      make_server_context(config_, validator, nullptr);
    } catch (const config::ConfigError& e) {
      return e.key();
    }
    return "";
  }

  static config::AdminConfig admin_listener(config::AdminAuth auth) {
    config::AdminConfig admin;
    admin.host = "127.0.0.1";
    admin.auth = auth;
    return admin;
  }

  easedge::testing::TempDir dir_{"easedge-tls-context"};
  easedge::testing::Issued ca_;
  easedge::testing::Issued server_;
  config::Config config_;
};

TEST_F(TlsContextTest, ServerContextReportsItsCertificate) {
  CertificateValidator validator(config_.tls, config_.source_file, 0);
  ServerCertificateSummary summary;
  auto ctx = make_server_context(config_, validator, &summary);
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(summary.subject, "CN=mail.corp.example.test");
  EXPECT_EQ(summary.issuer, "CN=Test Issuing CA");
  EXPECT_EQ(summary.key_type, "EC prime256v1");
  EXPECT_EQ(summary.not_after, format_time(*time_of(X509_get0_notAfter(server_.cert.get()))));
  // The device CAs are announced in the CertificateRequest.
  EXPECT_EQ(sk_X509_NAME_num(SSL_CTX_get_client_CA_list(ctx.get())), 1);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx.get()), TLS1_2_VERSION);
}

TEST_F(TlsContextTest, ClientCertificatesOffRequestsNone) {
  config_.tls.client_certificate = config::ClientCertificateMode::off;
  CertificateValidator validator(config_.tls, config_.source_file, 0);
  auto ctx = make_server_context(config_, validator, nullptr);
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx.get()), SSL_VERIFY_NONE);
}

TEST_F(TlsContextTest, SessionTicketsFollowTheConfig) {
  CertificateValidator validator(config_.tls, config_.source_file, 0);
  EXPECT_EQ(SSL_CTX_get_num_tickets(make_server_context(config_, validator, nullptr).get()), 1u);
  config_.tls.session_tickets = false;
  auto ctx = make_server_context(config_, validator, nullptr);
  EXPECT_EQ(SSL_CTX_get_num_tickets(ctx.get()), 0u);
  EXPECT_NE(SSL_CTX_get_options(ctx.get()) & SSL_OP_NO_TICKET, 0u);
}

TEST_F(TlsContextTest, UnusableFilesAreConfigErrorsNamingTheKey) {
  auto good = config_.tls;
  config_.tls.certificate = dir_.write("garbage.pem", "garbage\n");
  EXPECT_EQ(server_context_error_key(), "tls.certificate");
  config_.tls = good;
  config_.tls.private_key = dir_.path() / "missing.key";
  EXPECT_EQ(server_context_error_key(), "tls.private_key");
  config_.tls = good;
  config_.tls.private_key = dir_.write("other.key", easedge::testing::to_pem(easedge::testing::make_key().get()));
  EXPECT_EQ(server_context_error_key(), "tls.private_key");
  config_.tls = good;
  config_.tls.ciphers = "NO-SUCH-SUITE";
  EXPECT_EQ(server_context_error_key(), "tls.ciphers");
  config_.tls = good;
  EXPECT_EQ(server_context_error_key(), "");
}

TEST_F(TlsContextTest, UpstreamContextVerifiesAgainstTheConfiguredCa) {
  config_.upstream.ca = config_.tls.client_ca;
  auto ctx = make_upstream_context(config_);
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx.get()), SSL_VERIFY_PEER);
  config_.upstream.ca = dir_.write("garbage-ca.pem", "garbage\n");
  try {
    make_upstream_context(config_);
    FAIL() << "expected a ConfigError";
  } catch (const config::ConfigError& e) {
    EXPECT_EQ(e.key(), "upstream.ca");
  }
}

TEST_F(TlsContextTest, AdminContextOnlyWithACertificate) {
  EXPECT_EQ(make_admin_context(config_), nullptr);  // no admin section
  config_.admin = admin_listener(config::AdminAuth::none);
  EXPECT_EQ(make_admin_context(config_), nullptr);  // plain HTTP
  config_.admin->certificate = config_.tls.certificate;
  config_.admin->private_key = config_.tls.private_key;
  config_.tls.min_version = "1.3";
  auto ctx = make_admin_context(config_);
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx.get()), SSL_VERIFY_NONE);  // auth none or token: no certificate asked
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx.get()), TLS1_3_VERSION);
  EXPECT_EQ(SSL_CTX_get_num_tickets(ctx.get()), 0u);
}

TEST_F(TlsContextTest, AdminContextAsksForButNeverRequiresAnOperatorCertificate) {
  config_.admin = admin_listener(config::AdminAuth::client_certificate);
  config_.admin->certificate = config_.tls.certificate;
  config_.admin->private_key = config_.tls.private_key;
  config_.admin->client_ca = config_.tls.client_ca;
  auto ctx = make_admin_context(config_);
  ASSERT_NE(ctx, nullptr);
  // SSL_VERIFY_FAIL_IF_NO_PEER_CERT would lock /healthz, /readyz and /metrics away from probes.
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx.get()), SSL_VERIFY_PEER);
  EXPECT_EQ(sk_X509_NAME_num(SSL_CTX_get_client_CA_list(ctx.get())), 1);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx.get()), TLS1_2_VERSION);
}

TEST_F(TlsContextTest, AdminContextErrorsNameTheAdminKey) {
  config_.admin = admin_listener(config::AdminAuth::client_certificate);
  config_.admin->certificate = config_.tls.certificate;
  config_.admin->private_key = config_.tls.private_key;
  config_.admin->client_ca = config_.tls.client_ca;
  const auto good = *config_.admin;
  auto error_key = [&] {
    try {
      make_admin_context(config_);
    } catch (const config::ConfigError& e) {
      return e.key();
    }
    return std::string();
  };
  config_.admin->private_key = dir_.write("admin-other.key", easedge::testing::to_pem(easedge::testing::make_key().get()));
  EXPECT_EQ(error_key(), "admin.private_key");
  *config_.admin = good;
  config_.admin->certificate = dir_.write("admin-garbage.pem", "garbage\n");
  EXPECT_EQ(error_key(), "admin.certificate");
  *config_.admin = good;
  config_.admin->client_ca = dir_.write("admin-garbage-ca.pem", "garbage\n");
  EXPECT_EQ(error_key(), "admin.client_ca");
  *config_.admin = good;
  config_.admin->crl = {dir_.write("admin-garbage.crl", "garbage\n")};
  EXPECT_EQ(error_key(), "admin.crl");
  *config_.admin = good;
  EXPECT_EQ(error_key(), "");
}

TEST_F(TlsContextTest, UpstreamSslSendsSniForNamesOnly) {
  auto ctx = make_upstream_context(config_);
  auto by_name = make_upstream_ssl(ctx.get(), "exchange.corp.example.test");
  EXPECT_STREQ(SSL_get_servername(by_name.get(), TLSEXT_NAMETYPE_host_name), "exchange.corp.example.test");
  auto by_address = make_upstream_ssl(ctx.get(), "192.0.2.10");
  EXPECT_EQ(SSL_get_servername(by_address.get(), TLSEXT_NAMETYPE_host_name), nullptr);
}

}  // namespace
}  // namespace easedge::auth
