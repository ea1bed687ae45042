// Header sanitising at the edge: spoofed identity headers and hop-by-hop headers never reach Exchange.
#include "proxy/forwarded_headers.h"

#include <gtest/gtest.h>

namespace easedge::proxy {
namespace {

http::fields hostile_request() {
  http::fields f;
  f.insert("Host", "mail.example.test");
  f.insert("X-Forwarded-User", "ceo@corp.example.test");
  f.insert("x-forwarded-user", "second@corp.example.test");
  f.insert("X_Forwarded_User", "underscore@corp.example.test");
  f.insert("X-FORWARDED-CLIENT-CERT", "Hash=00;Subject=\"CN=ceo\"");
  f.insert("X-Forwarded-For", "10.0.0.1");
  f.insert("X-Forwarded-Proto", "http");
  f.insert("Forwarded", "for=10.0.0.1");
  f.insert("X-Real-IP", "10.0.0.1");
  f.insert("Connection", "keep-alive, X-Secret-Hop");
  f.insert("X-Secret-Hop", "drop me");
  f.insert("Keep-Alive", "timeout=5");
  f.insert("Upgrade", "websocket");
  f.insert("TE", "trailers");
  f.insert("Expect", "100-continue");
  f.insert("Authorization", "Basic YWxpY2U6");
  f.insert("MS-ASProtocolVersion", "16.1");
  f.insert("User-Agent", "Apple-iPhone/1");
  return f;
}

TEST(SanitizeRequestHeaders, RemovesEverySpellingOfIdentityHeaders) {
  auto f = hostile_request();
  sanitize_request_headers(f, false);
  for (const char* name : {"X-Forwarded-User", "X_Forwarded_User", "X-Forwarded-Client-Cert", "X-Forwarded-For",
                           "X-Forwarded-Proto", "Forwarded", "X-Real-IP"})
    EXPECT_EQ(f.count(name), 0u) << name;
}

TEST(SanitizeRequestHeaders, RemovesHopByHopAndConnectionListedHeaders) {
  auto f = hostile_request();
  sanitize_request_headers(f, false);
  for (const char* name : {"Connection", "X-Secret-Hop", "Keep-Alive", "Upgrade", "TE", "Expect"})
    EXPECT_EQ(f.count(name), 0u) << name;
}

TEST(SanitizeRequestHeaders, KeepsActiveSyncHeadersAndAuthorizationUnlessKerberos) {
  auto f = hostile_request();
  sanitize_request_headers(f, false);
  EXPECT_EQ(f["MS-ASProtocolVersion"], "16.1");
  EXPECT_EQ(f["User-Agent"], "Apple-iPhone/1");
  EXPECT_EQ(f["Authorization"], "Basic YWxpY2U6");
  auto kerberos = hostile_request();
  sanitize_request_headers(kerberos, true);
  EXPECT_EQ(kerberos.count("Authorization"), 0u);
}

TEST(AddForwardedHeaders, SetsOnlyTheProxysIdentity) {
  auth::ClientCertificate cert;
  cert.leaf = auth::X509Ptr(X509_new(), X509_free);
  cert.sha256_hex = "ab12";
  cert.subject = "CN=WorkspaceONEUEM.alice,O=Quote\"Back\\slash";
  auto f = hostile_request();
  sanitize_request_headers(f, true);
  add_forwarded_headers(f, {.user = "alice@corp.example.test",
                            .certificate = &cert,
                            .client_address = "192.0.2.7",
                            .authorization = "Negotiate YIIG"});
  EXPECT_EQ(f.count("X-Forwarded-User"), 1u);
  EXPECT_EQ(f["X-Forwarded-User"], "alice@corp.example.test");
  EXPECT_EQ(f["X-Forwarded-Client-Cert"], "Hash=ab12;Subject=\"CN=WorkspaceONEUEM.alice,O=Quote\\\"Back\\\\slash\"");
  EXPECT_EQ(f["X-Forwarded-For"], "192.0.2.7");
  EXPECT_EQ(f["X-Forwarded-Proto"], "https");
  EXPECT_EQ(f["Authorization"], "Negotiate YIIG");
}

TEST(SafeHeaderValue, RejectsControlBytes) {
  EXPECT_TRUE(is_safe_header_value("alice@corp.example.test"));
  EXPECT_TRUE(is_safe_header_value("tab\tinside"));
  EXPECT_FALSE(is_safe_header_value("alice\r\nX-Forwarded-User: ceo"));
  EXPECT_FALSE(is_safe_header_value(std::string_view("nul\0byte", 8)));
  EXPECT_FALSE(is_safe_header_value("del\x7f"));
}

TEST(SanitizeResponseHeaders, DropsHopByHopKeepsExchangeHeaders) {
  http::fields f;
  f.insert("Connection", "close, X-Hop");
  f.insert("X-Hop", "1");
  f.insert("MS-ASProtocolVersions", "14.1,16.1");
  f.insert("X-MS-Location", "https://other.example.test/Microsoft-Server-ActiveSync");
  sanitize_response_headers(f);
  EXPECT_EQ(f.count("Connection"), 0u);
  EXPECT_EQ(f.count("X-Hop"), 0u);
  EXPECT_EQ(f["MS-ASProtocolVersions"], "14.1,16.1");
  EXPECT_EQ(f.count("X-MS-Location"), 1u);
}

}  // namespace
}  // namespace easedge::proxy
