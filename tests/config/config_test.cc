// Config loading: defaults, path resolution, and that every mistake names its key and file.
#include "config/config.h"

#include <gtest/gtest.h>

#include <fstream>

namespace easedge::config {
namespace {

class ConfigTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("easedge-config-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    for (const char* name : {"server.pem", "server.key", "ca.pem", "issuing.crl", "users.ldif", "pw"})
      std::ofstream(dir_ / name) << "x";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path write(const std::string& yaml) {
    auto file = dir_ / "easedge.yaml";
    std::ofstream(file) << yaml;
    return file;
  }

  static std::string minimal() {
    return "listen: [\"127.0.0.1:8443\"]\n"
           "tls: {certificate: server.pem, private_key: server.key, client_ca: ca.pem}\n"
           "upstream: {url: \"http://127.0.0.1:8080\"}\n";
  }

  // minimal() with `tls_extra` / `upstream_extra` ("key: value" in flow style) added to those sections.
  static std::string minimal_with(const std::string& tls_extra, const std::string& upstream_extra = "") {
    return "listen: [\"127.0.0.1:8443\"]\n"
           "tls: {certificate: server.pem, private_key: server.key, client_ca: ca.pem" +
           (tls_extra.empty() ? "" : ", " + tls_extra) + "}\n" + "upstream: {url: \"http://127.0.0.1:8080\"" +
           (upstream_extra.empty() ? "" : ", " + upstream_extra) + "}\n";
  }

  std::string error_of(const std::string& yaml) {
    try {
      load_config(write(yaml));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }

  std::filesystem::path dir_;
};

TEST_F(ConfigTest, MinimalConfigGetsDocumentedDefaults) {
  auto c = load_config(write(minimal()));
  ASSERT_EQ(c.listen.size(), 1u);
  EXPECT_EQ(c.listen[0].host, "127.0.0.1");
  EXPECT_EQ(c.listen[0].port, 8443);
  EXPECT_EQ(c.tls.client_certificate, ClientCertificateMode::required);
  EXPECT_TRUE(c.tls.session_tickets);
  EXPECT_EQ(c.limits.upload_read_ahead_bytes, 10485760u);
  EXPECT_EQ(c.timeouts.upstream_response, std::chrono::seconds(3600));
  ASSERT_EQ(c.upstream.servers.size(), 1u);
  EXPECT_EQ(c.upstream.servers[0].scheme, "http");
  EXPECT_EQ(c.upstream.servers[0].host, "127.0.0.1");
  EXPECT_EQ(c.upstream.servers[0].port, 8080);
  EXPECT_EQ(c.upstream.retry, std::chrono::seconds(30));
  EXPECT_FALSE(c.upstream.health_check.has_value());
  EXPECT_TRUE(c.upstream.source_addresses.empty());
  EXPECT_EQ(c.upstream.auth, UpstreamAuth::forward_headers);
  EXPECT_FALSE(c.mapping.has_value());
  EXPECT_EQ(c.eas.ping_timeout, std::chrono::seconds(3600));
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheConfigFolder) {
  auto c = load_config(write(minimal() + "mapping: {directory: {ldif: users.ldif}}\n"));
  EXPECT_EQ(c.tls.certificate, dir_ / "server.pem");
  ASSERT_TRUE(c.mapping);
  EXPECT_EQ(*c.mapping->directory.ldif, dir_ / "users.ldif");
  EXPECT_EQ(c.mapping->strong_binding, StrongBinding::full);
}

TEST_F(ConfigTest, UnknownKeysAreErrorsNamingTheKeyAndFile) {
  auto message = error_of(minimal() + "limits: {upload_read_ahead_byte: 5}\n");
  EXPECT_NE(message.find("limits.upload_read_ahead_byte"), std::string::npos) << message;
  EXPECT_NE(message.find("easedge.yaml"), std::string::npos) << message;
  EXPECT_NE(error_of(minimal() + "tlss: {}\n").find("'tlss'"), std::string::npos);
}

TEST_F(ConfigTest, BadValuesNameTheirKey) {
  auto yaml = minimal();
  auto bad_mode = error_of(
      "listen: [\"127.0.0.1:8443\"]\n"
      "tls: {certificate: server.pem, private_key: server.key, client_ca: ca.pem, client_certificate: maybe}\n"
      "upstream: {url: \"http://127.0.0.1:8080\"}\n");
  EXPECT_NE(bad_mode.find("tls.client_certificate"), std::string::npos) << bad_mode;
  EXPECT_NE(bad_mode.find("required | optional | off"), std::string::npos) << bad_mode;

  auto missing_file = error_of(
      "listen: [\"127.0.0.1:8443\"]\n"
      "tls: {certificate: nope.pem, private_key: server.key, client_ca: ca.pem}\n"
      "upstream: {url: \"http://127.0.0.1:8080\"}\n");
  EXPECT_NE(missing_file.find("tls.certificate"), std::string::npos) << missing_file;
  EXPECT_NE(missing_file.find("nope.pem"), std::string::npos) << missing_file;

  EXPECT_NE(error_of(minimal() + "limits: {upload_read_ahead_bytes: lots}\n").find("limits.upload_read_ahead_bytes"),
            std::string::npos);
  EXPECT_NE(error_of("listen: [\"127.0.0.1\"]\ntls: {}\nupstream: {}\n").find("listen[0]"), std::string::npos);
}

TEST_F(ConfigTest, SessionTicketsCanBeTurnedOff) {
  auto c = load_config(write(
      "listen: [\"127.0.0.1:8443\"]\n"
      "tls: {certificate: server.pem, private_key: server.key, client_ca: ca.pem, session_tickets: false}\n"
      "upstream: {url: \"http://127.0.0.1:8080\"}\n"));
  EXPECT_FALSE(c.tls.session_tickets);
  auto bad = error_of(
      "listen: [\"127.0.0.1:8443\"]\n"
      "tls: {certificate: server.pem, private_key: server.key, client_ca: ca.pem, session_tickets: sometimes}\n"
      "upstream: {url: \"http://127.0.0.1:8080\"}\n");
  EXPECT_NE(bad.find("tls.session_tickets"), std::string::npos) << bad;
}

TEST_F(ConfigTest, SessionTicketKeysNameAFileAndNeedTickets) {
  EXPECT_TRUE(load_config(write(minimal())).tls.session_ticket_keys.empty());
  std::ofstream(dir_ / "ticket-keys") << "x";
  auto c = load_config(write(minimal_with("session_ticket_keys: ticket-keys")));
  EXPECT_EQ(c.tls.session_ticket_keys, dir_ / "ticket-keys");
  auto missing = error_of(minimal_with("session_ticket_keys: no-such-file"));
  EXPECT_NE(missing.find("tls.session_ticket_keys"), std::string::npos) << missing;
  auto off = error_of(minimal_with("session_ticket_keys: ticket-keys, session_tickets: false"));
  EXPECT_NE(off.find("needs session_tickets: true"), std::string::npos) << off;
}

TEST_F(ConfigTest, DrainDelayDefaultsToFiveSeconds) {
  EXPECT_EQ(load_config(write(minimal())).timeouts.drain_delay, std::chrono::seconds(5));
  auto c = load_config(write(minimal() + "timeouts: {drain_delay_seconds: 0}\n"));
  EXPECT_EQ(c.timeouts.drain_delay, std::chrono::seconds(0));
  auto bad = error_of(minimal() + "timeouts: {drain_delay_seconds: 3601}\n");
  EXPECT_NE(bad.find("timeouts.drain_delay_seconds"), std::string::npos) << bad;
}

TEST_F(ConfigTest, HardeningKeysHaveTheirDocumentedDefaults) {
  auto c = load_config(write(minimal()));
  EXPECT_EQ(c.tls.ciphers,
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
            "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
  EXPECT_EQ(c.limits.max_connections, 0u);  // sized from the descriptor limit at start
  EXPECT_EQ(c.limits.max_request_headers, 100u);
  EXPECT_EQ(c.limits.max_request_header_bytes, 16384u);
  EXPECT_TRUE(c.upstream.strip_headers.empty());
}

TEST_F(ConfigTest, CipherListIsCheckedAtLoad) {
  auto c = load_config(write(minimal_with("ciphers: \"ECDHE-ECDSA-AES256-GCM-SHA384:!aNULL:@STRENGTH\"")));
  EXPECT_EQ(c.tls.ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384:!aNULL:@STRENGTH");
  for (const char* bad : {"NO-SUCH-SUITE", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA265",
                          "TLS_AES_128_GCM_SHA256", "!ALL", ""}) {
    auto message = error_of(minimal_with("ciphers: \"" + std::string(bad) + "\""));
    EXPECT_NE(message.find("key 'tls.ciphers'"), std::string::npos) << bad << ": " << message;
    EXPECT_NE(message.find("easedge.yaml"), std::string::npos) << message;
  }
  // The unknown name is quoted, so the operator sees which one.
  auto typo = error_of(minimal_with("ciphers: \"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA265\""));
  EXPECT_NE(typo.find("'ECDHE-ECDSA-AES128-GCM-SHA265'"), std::string::npos) << typo;
}

TEST_F(ConfigTest, StripHeadersMustBeHeaderFieldNames) {
  auto c = load_config(write(minimal_with("", "strip_headers: [X-Debug-User, \"x-internal_route\"]")));
  EXPECT_EQ(c.upstream.strip_headers, (std::vector<std::string>{"X-Debug-User", "x-internal_route"}));
  for (const char* bad : {"X Debug", "X-User:", "", "X-\u00e9"}) {
    auto message = error_of(minimal_with("", "strip_headers: [\"" + std::string(bad) + "\"]"));
    EXPECT_NE(message.find("upstream.strip_headers"), std::string::npos) << bad << ": " << message;
  }
}

TEST_F(ConfigTest, MaxRequestHeadersBounds) {
  for (auto [value, ok] : {std::pair{"8", true}, {"10000", true}, {"7", false}, {"10001", false}, {"0", false}}) {
    auto yaml = minimal() + "limits: {max_request_headers: " + value + "}\n";
    if (ok) {
      EXPECT_EQ(load_config(write(yaml)).limits.max_request_headers, std::stoul(value));
    } else {
      auto message = error_of(yaml);
      EXPECT_NE(message.find("limits.max_request_headers"), std::string::npos) << value << ": " << message;
      EXPECT_NE(message.find("between 8 and 10000"), std::string::npos) << message;
    }
  }
}

TEST_F(ConfigTest, UpstreamUrlIsParsedAndChecked) {
  auto https = load_config(write(
      "listen: [\"[::1]:443\"]\n"
      "tls: {certificate: server.pem, private_key: server.key, client_ca: ca.pem}\n"
      "upstream: {url: \"https://exchange.corp.example.test\", ca: ca.pem}\n"));
  EXPECT_EQ(https.listen[0].host, "::1");
  EXPECT_EQ(https.upstream.servers[0].port, 443);
  EXPECT_EQ(https.upstream.servers[0].server_name, "exchange.corp.example.test");
  EXPECT_NE(error_of("listen: [\"127.0.0.1:1\"]\n"
                     "tls: {certificate: server.pem, private_key: server.key, client_ca: ca.pem}\n"
                     "upstream: {url: \"ftp://x\"}\n")
                .find("upstream.url"),
            std::string::npos);
}

// issue 17: upstream.url may carry a path prefix, but only a clean absolute one; the query stays the device's.
TEST_F(ConfigTest, UpstreamUrlPathPrefixMustBeClean) {
  auto url = [](const std::string& u) { return "listen: [\"127.0.0.1:1\"]\n"
                                               "tls: {certificate: server.pem, private_key: server.key, client_ca: ca.pem}\n"
                                               "upstream: {url: \"" + u + "\"}\n"; };
  for (auto [written, prefix] : {std::pair{"http://127.0.0.1:20000/SOGo", "/SOGo"}, {"http://h/SOGo/", "/SOGo"},
                                 {"http://h/", ""}, {"http://h", ""}, {"http://h/a/b-c_d.e~f", "/a/b-c_d.e~f"}})
    EXPECT_EQ(load_config(write(url(written))).upstream.servers.front().path_prefix, prefix) << written;
  for (const char* bad : {"http://h/SOGo/../ecp", "http://h/./x", "http://h/a//b", "http://h//", "http://h/%2e%2e/x",
                          "http://h/SOGo%2fecp", "http://h/a?x=1", "http://h/a#f", "http://u:p@h/a", "http://h/a\\b",
                          "http://h/a%00b"}) {
    auto message = error_of(url(bad));
    EXPECT_NE(message.find("upstream.url"), std::string::npos) << bad << ": " << message;
    EXPECT_NE(message.find("easedge.yaml"), std::string::npos) << bad << ": " << message;
  }
}

TEST_F(ConfigTest, UpstreamIdentityKeys) {
  auto defaults = load_config(write(minimal()));
  EXPECT_EQ(defaults.upstream.identity_header, "X-Forwarded-User");
  EXPECT_EQ(defaults.upstream.identity_format, IdentityFormat::upn);
  EXPECT_EQ(defaults.upstream.client_cert_header, "X-Forwarded-Client-Cert");
  EXPECT_TRUE(defaults.upstream.keepalive);
  auto sogo = load_config(write(minimal_with("", "identity_header: x-webobjects-remote-user, identity_format: "
                                                 "upn_local_part, client_cert_header: \"\", keepalive: false")));
  EXPECT_EQ(sogo.upstream.identity_header, "x-webobjects-remote-user");
  EXPECT_EQ(sogo.upstream.identity_format, IdentityFormat::upn_local_part);
  EXPECT_EQ(sogo.upstream.client_cert_header, "");
  EXPECT_FALSE(sogo.upstream.keepalive);
  for (const char* bad : {"identity_header: \"X User\"", "identity_header: \"\"", "identity_format: uid",
                          "client_cert_header: \"X:Cert\"", "client_cert_header: x_forwarded_user",
                          "keepalive: sometimes", "identity_header: Content-Length", "identity_header: HOST",
                          "identity_header: transfer_encoding", "client_cert_header: Connection",
                          "identity_header: X-Forwarded-For", "client_cert_header: authorization"}) {
    auto message = error_of(minimal_with("", bad));
    EXPECT_NE(message.find("upstream."), std::string::npos) << bad << ": " << message;
  }
  // sam_account_name and mail exist only in a directory.
  auto message = error_of(minimal_with("", "identity_format: sam_account_name"));
  EXPECT_NE(message.find("upstream.identity_format"), std::string::npos) << message;
  EXPECT_EQ(load_config(write(minimal_with("", "identity_format: mail") + "mapping: {directory: {ldif: users.ldif}}\n"))
                .upstream.identity_format,
            IdentityFormat::mail);
}

TEST_F(ConfigTest, SeveralUpstreamServers) {
  auto c = load_config(write(
      "listen: [\"127.0.0.1:8443\"]\n"
      "tls: {certificate: server.pem, private_key: server.key, client_ca: ca.pem}\n"
      "upstream:\n"
      "  servers: [\"https://exch1.corp.example.test\", {url: \"https://127.0.0.1:8444\", server_name: exch2.corp.example.test,"
      " service: HTTP/exch2.corp.example.test}]\n"
      "  auth: kerberos\n"
      "  kerberos: {keytab: pw, principal: easproxy@CORP.EXAMPLE.TEST}\n"
      "  retry_seconds: 7\n"
      "  health_check: {path: /Microsoft-Server-ActiveSync/healthcheck.htm, interval_seconds: 3}\n"
      "  source_addresses: [127.0.0.2, \"::1\"]\n"));
  ASSERT_EQ(c.upstream.servers.size(), 2u);
  EXPECT_EQ(c.upstream.servers[0].server_name, "exch1.corp.example.test");
  EXPECT_EQ(c.upstream.servers[0].service, "HTTP/exch1.corp.example.test");  // the default SPN: HTTP/<host>
  EXPECT_EQ(c.upstream.servers[1].host, "127.0.0.1");
  EXPECT_EQ(c.upstream.servers[1].server_name, "exch2.corp.example.test");
  EXPECT_EQ(c.upstream.servers[1].service, "HTTP/exch2.corp.example.test");
  EXPECT_EQ(c.upstream.retry, std::chrono::seconds(7));
  ASSERT_TRUE(c.upstream.health_check.has_value());
  EXPECT_EQ(c.upstream.health_check->interval, std::chrono::seconds(3));
  EXPECT_EQ(c.upstream.health_check->timeout, std::chrono::seconds(5));
  EXPECT_EQ(c.upstream.source_addresses, (std::vector<std::string>{"127.0.0.2", "::1"}));
}

TEST_F(ConfigTest, UpstreamServerMistakesNameTheirKey) {
  auto with = [](const std::string& upstream) {
    return "listen: [\"127.0.0.1:8443\"]\n"
           "tls: {certificate: server.pem, private_key: server.key, client_ca: ca.pem}\n"
           "upstream: {" + upstream + "}\n";
  };
  auto both = error_of(with("url: \"http://a:1\", servers: [\"http://b:1\"]"));
  EXPECT_NE(both.find("key 'upstream.servers'"), std::string::npos) << both;
  EXPECT_NE(both.find("easedge.yaml"), std::string::npos) << both;
  EXPECT_NE(error_of(with("retry_seconds: 1")).find("upstream.url"), std::string::npos);
  EXPECT_NE(error_of(with("servers: []")).find("upstream.servers"), std::string::npos);
  auto bad = error_of(with("servers: [\"http://a:1\", \"ftp://b\"]"));
  EXPECT_NE(bad.find("upstream.servers[1]"), std::string::npos) << bad;
  EXPECT_NE(error_of(with("servers: [\"http://a:1\", \"http://a:1\"]")).find("twice"), std::string::npos);
  auto source = error_of(with("url: \"http://a:1\", source_addresses: [eth0]"));
  EXPECT_NE(source.find("upstream.source_addresses"), std::string::npos) << source;
  auto check = error_of(with("url: \"http://a:1\", health_check: {interval_seconds: 3}"));
  EXPECT_NE(check.find("upstream.health_check.path"), std::string::npos) << check;
  // Kerberos needs a name for the SPN: an IP address alone is refused.
  auto ip = error_of(with("servers: [\"http://127.0.0.1:1\"], auth: kerberos, kerberos: {keytab: pw, principal: p@R}"));
  EXPECT_NE(ip.find("upstream.kerberos.service"), std::string::npos) << ip;
}

// A farm of backends serves one application under one path: servers with different paths are refused.
TEST_F(ConfigTest, UpstreamServersShareOnePath) {
  auto with = [](const std::string& servers) {
    return "listen: [\"127.0.0.1:8443\"]\n"
           "tls: {certificate: server.pem, private_key: server.key, client_ca: ca.pem}\n"
           "upstream: {servers: [" + servers + "]}\n";
  };
  auto same = load_config(write(with("\"http://a:1/SOGo\", \"http://b:1/SOGo/\"")));
  EXPECT_EQ(same.upstream.servers[1].path_prefix, "/SOGo");
  auto message = error_of(with("\"http://a:1/SOGo\", \"http://b:1\""));
  EXPECT_NE(message.find("upstream.servers"), std::string::npos) << message;
  EXPECT_NE(message.find("same path"), std::string::npos) << message;
}

TEST_F(ConfigTest, ListenerMayAskForProxyProtocol) {
  auto c = load_config(write(
      "listen: [\"127.0.0.1:8443\", {address: \"0.0.0.0:443\", proxy_protocol: true}]\n"
      "tls: {certificate: server.pem, private_key: server.key, client_ca: ca.pem}\n"
      "upstream: {url: \"http://127.0.0.1:8080\"}\n"));
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_FALSE(c.listen[0].proxy_protocol);
  EXPECT_TRUE(c.listen[1].proxy_protocol);
  EXPECT_EQ(c.listen[1].port, 443);
}

TEST_F(ConfigTest, MappingDirectoryNeedsExactlyOneSource) {
  EXPECT_NE(error_of(minimal() + "mapping: {directory: {}}\n").find("mapping.directory"), std::string::npos);
  auto ldap_without_password = error_of(
      minimal() + "mapping: {directory: {ldap: {url: \"ldap://127.0.0.1\", base: \"DC=x\", bind_dn: \"CN=a\"}}}\n");
  EXPECT_NE(ldap_without_password.find("mapping.directory.ldap.password_file"), std::string::npos)
      << ldap_without_password;
}

TEST_F(ConfigTest, KerberosAuthNeedsItsSection) {
  EXPECT_NE(error_of(minimal() + "").size(), 1u);
  auto message = error_of(
      "listen: [\"127.0.0.1:8443\"]\n"
      "tls: {certificate: server.pem, private_key: server.key, client_ca: ca.pem}\n"
      "upstream: {url: \"http://127.0.0.1:8080\", auth: kerberos}\n");
  EXPECT_NE(message.find("upstream.kerberos"), std::string::npos) << message;
}

TEST_F(ConfigTest, AdminOffLoopbackNeedsAToken) {
  auto loopback = load_config(write(minimal() + "admin: {listen: \"127.0.0.1:9901\"}\n"));
  ASSERT_TRUE(loopback.admin);
  EXPECT_EQ(loopback.admin->auth, AdminAuth::none);
  EXPECT_EQ(loopback.admin->explain_max_bytes, 64u * 1024);

  auto open = error_of(minimal() + "admin: {listen: \"0.0.0.0:9901\"}\n");
  EXPECT_NE(open.find("admin.auth"), std::string::npos) << open;
  EXPECT_NE(open.find("easedge.yaml"), std::string::npos) << open;

  auto missing = error_of(minimal() + "admin: {listen: \"10.0.0.5:9901\", auth: token, token_file: nope.token}\n");
  EXPECT_NE(missing.find("admin.token_file"), std::string::npos) << missing;
  EXPECT_NE(missing.find("nope.token"), std::string::npos) << missing;

  std::ofstream(dir_ / "short.token") << "abc\n";
  auto short_token = error_of(minimal() + "admin: {listen: \"10.0.0.5:9901\", auth: token, token_file: short.token}\n");
  EXPECT_NE(short_token.find("at least 16 characters"), std::string::npos) << short_token;

  std::ofstream(dir_ / "admin.token") << "0123456789abcdef-token \n";
  auto token = load_config(write(minimal() + "admin: {listen: \"10.0.0.5:9901\", auth: token, token_file: admin.token, "
                                             "explain_max_bytes: 4096}\n"));
  EXPECT_EQ(token.admin->auth, AdminAuth::token);
  EXPECT_EQ(token.admin->token, "0123456789abcdef-token");
  EXPECT_EQ(token.admin->explain_max_bytes, 4096u);
  EXPECT_NE(error_of(minimal() + "admin: {listen: \"127.0.0.1:9901\", auth: maybe}\n").find("admin.auth"),
            std::string::npos);
}

TEST_F(ConfigTest, AdminClientCertificateNeedsItsCaAndAServerCertificate) {
  const std::string https = "certificate: server.pem, private_key: server.key";
  auto c = load_config(write(minimal() + "admin: {listen: \"10.0.0.5:9901\", auth: client_certificate, "
                                         "client_ca: ca.pem, " + https + "}\n"));
  ASSERT_TRUE(c.admin);
  EXPECT_EQ(c.admin->auth, AdminAuth::client_certificate);
  EXPECT_EQ(c.admin->client_ca, dir_ / "ca.pem");
  EXPECT_EQ(c.admin->certificate, dir_ / "server.pem");
  EXPECT_EQ(c.admin->private_key, dir_ / "server.key");

  // Each mistake names its key (and the file where one is named).
  auto expect_error = [&](const std::string& admin, const std::string& key, const std::string& also = "") {
    auto message = error_of(minimal() + "admin: {listen: \"10.0.0.5:9901\", " + admin + "}\n");
    EXPECT_NE(message.find("key '" + key + "'"), std::string::npos) << admin << ": " << message;
    EXPECT_NE(message.find(also), std::string::npos) << admin << ": " << message;
  };
  expect_error("auth: client_certificate, " + https, "admin.client_ca", "client_certificate");
  expect_error("auth: client_certificate, client_ca: ca.pem", "admin.certificate", "HTTPS");
  expect_error("auth: client_certificate, client_ca: missing-ca.pem, " + https, "admin.client_ca", "missing-ca.pem");
  expect_error("auth: client_certificate, client_ca: ca.pem, certificate: server.pem", "admin.private_key");
  expect_error("auth: client_certificate, client_ca: ca.pem, private_key: server.key", "admin.certificate");
  expect_error("auth: client_certificate, client_ca: ca.pem, certificate: gone.pem, private_key: server.key",
               "admin.certificate", "gone.pem");
  expect_error("auth: client_certificate, client_ca: ca.pem, certificate: server.pem, private_key: gone.key",
               "admin.private_key", "gone.key");
  std::ofstream(dir_ / "admin.token") << "0123456789abcdef-token\n";
  expect_error("auth: token, token_file: admin.token, client_ca: ca.pem", "admin.client_ca", "client_certificate");
  // The error for an open listener now names both credentials.
  expect_error("certificate: server.pem, private_key: server.key", "admin.auth", "client_certificate");
  // Operator CRLs go with operator certificates only, and must be there.
  expect_error("auth: token, token_file: admin.token, crl: [ca.pem]", "admin.crl", "client_certificate");
  expect_error("auth: client_certificate, client_ca: ca.pem, crl: [gone.crl], " + https, "admin.crl", "gone.crl");
}

TEST_F(ConfigTest, AdminCrlFilesResolveAgainstTheConfigFolder) {
  std::ofstream(dir_ / "operators.crl") << "a CRL\n";  // read by the TLS context, not the loader
  auto c = load_config(write(minimal() + "admin: {listen: \"10.0.0.5:9901\", auth: client_certificate, client_ca: "
                                         "ca.pem, crl: [operators.crl], certificate: server.pem, private_key: server.key}\n"));
  ASSERT_TRUE(c.admin);
  EXPECT_EQ(c.admin->crl, std::vector<std::filesystem::path>{dir_ / "operators.crl"});
  EXPECT_TRUE(load_config(write(minimal() + "admin: {listen: \"127.0.0.1:9901\"}\n")).admin->crl.empty());
}

TEST_F(ConfigTest, AdminHttpsGoesWithEveryAuth) {
  auto loopback = load_config(
      write(minimal() + "admin: {listen: \"127.0.0.1:9901\", certificate: server.pem, private_key: server.key}\n"));
  EXPECT_EQ(loopback.admin->auth, AdminAuth::none);
  EXPECT_EQ(loopback.admin->certificate, dir_ / "server.pem");
  EXPECT_TRUE(loopback.admin->client_ca.empty());
  std::ofstream(dir_ / "admin.token") << "0123456789abcdef-token\n";
  auto token = load_config(write(minimal() + "admin: {listen: \"10.0.0.5:9901\", auth: token, token_file: admin.token, "
                                             "certificate: server.pem, private_key: server.key}\n"));
  EXPECT_EQ(token.admin->auth, AdminAuth::token);
  EXPECT_EQ(token.admin->private_key, dir_ / "server.key");
  // Plain HTTP stays the default.
  auto plain = load_config(write(minimal() + "admin: {listen: \"127.0.0.1:9901\"}\n"));
  EXPECT_TRUE(plain.admin->certificate.empty());
}

TEST_F(ConfigTest, YamlSyntaxErrorsGiveTheLine) {
  auto message = error_of("listen: [\"127.0.0.1:8443\"\ntls: {\n");
  EXPECT_NE(message.find("line"), std::string::npos) << message;
}

}  // namespace
}  // namespace easedge::config
