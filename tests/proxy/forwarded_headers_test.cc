// The heads easedge forwards: built from its parse, spoofed identity and routing headers and hop-by-hop
// fields never reach Exchange, framing is easedge's own, trailers never cross.
#include "proxy/forwarded_headers.h"

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

namespace easedge::proxy {
namespace {

http::request_header<> hostile_request() {
  http::request_header<> f;
  f.method(http::verb::post);
  f.target("/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=D1&DeviceType=iPhone");
  f.version(11);
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
  f.insert("Trailer", "X-Forwarded-User");
  f.insert("Expect", "100-continue");
  f.insert("Authorization", "Basic YWxpY2U6");
  f.insert("Content-Length", "999");
  f.insert("MS-ASProtocolVersion", "16.1");
  f.insert("User-Agent", "Apple-iPhone/1");
  return f;
}

ForwardedRequest forward(const http::request_header<>& head, Framing framing = {BodyFraming::content_length, 5},
                         const HeaderPolicy& policy = HeaderPolicy(), const ForwardedIdentity& identity = {}) {
  return forwarded_request(head, framing, policy, identity);
}

TEST(ForwardedRequest, DropsEverySpellingOfIdentityAndRoutingHeaders) {
  auto head = hostile_request();
  for (auto name : identity_and_routing_headers) {
    head.insert(std::string(name), "spoofed");
    std::string underscored(name);
    for (auto& c : underscored) c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    head.insert(underscored, "spoofed");
  }
  auto out = forward(head);
  for (const auto& field : out) EXPECT_NE(field.value(), "spoofed") << field.name_string();
  for (const char* name : {"X-Forwarded-User", "X_Forwarded_User", "X-Forwarded-Client-Cert", "X-Forwarded-For",
                           "Forwarded", "X-Real-IP", "Authorization"})
    EXPECT_EQ(out.count(name), 0u) << name;
}

TEST(ForwardedRequest, DropsHopByHopAndConnectionListedHeaders) {
  auto out = forward(hostile_request());
  for (const char* name : {"Connection", "X-Secret-Hop", "Keep-Alive", "Upgrade", "TE", "Trailer", "Expect"})
    EXPECT_EQ(out.count(name), 0u) << name;
}

TEST(ForwardedRequest, KeepsMethodTargetHostAndActiveSyncHeaders) {
  auto head = hostile_request();
  auto out = forward(head);
  EXPECT_EQ(out.method(), http::verb::post);
  EXPECT_EQ(out.target(), head.target());
  EXPECT_EQ(out.version(), 11u);
  EXPECT_EQ(out.count(http::field::host), 1u);
  EXPECT_EQ(out[http::field::host], "mail.example.test");
  EXPECT_EQ(out["MS-ASProtocolVersion"], "16.1");
  EXPECT_EQ(out["User-Agent"], "Apple-iPhone/1");
}

TEST(ForwardedRequest, WritesExactlyOneFramingFieldOfItsOwn) {
  auto head = hostile_request();  // says Content-Length: 999: what easedge parsed wins
  auto sized = forward(head, {BodyFraming::content_length, 5});
  EXPECT_EQ(sized.count(http::field::content_length), 1u);
  EXPECT_EQ(sized[http::field::content_length], "5");
  EXPECT_EQ(sized.count(http::field::transfer_encoding), 0u);

  auto chunked = forward(head, {BodyFraming::chunked, 0});
  EXPECT_EQ(chunked.count(http::field::transfer_encoding), 1u);
  EXPECT_EQ(chunked[http::field::transfer_encoding], "chunked");
  EXPECT_EQ(chunked.count(http::field::content_length), 0u);

  auto bodiless_post = forward(head, {BodyFraming::none, 0});
  EXPECT_EQ(bodiless_post[http::field::content_length], "0");
  head.method(http::verb::options);
  auto options = forward(head, {BodyFraming::none, 0});
  EXPECT_EQ(options.count(http::field::content_length), 0u);
  EXPECT_EQ(options.count(http::field::transfer_encoding), 0u);
}

TEST(ForwardedRequest, StripsConfiguredHeadersInAnySpelling) {
  auto head = hostile_request();
  head.insert("X-Internal_Route", "ecp");
  auto out = forward(head, {BodyFraming::none, 0}, HeaderPolicy({"x-internal-route"}));
  EXPECT_EQ(out.count("X-Internal_Route"), 0u);
}

TEST(ForwardedRequest, SetsOnlyTheProxysIdentity) {
  auth::ClientCertificate cert;
  cert.leaf = auth::share(auth::OwnedX509(X509_new()));
  cert.sha256_hex = "ab12";
  cert.subject = "CN=WorkspaceONEUEM.alice,O=Quote\"Back\\slash";
  auto out = forward(hostile_request(), {BodyFraming::none, 0}, HeaderPolicy(),
                     {.user = "alice@corp.example.test",
                      .forwarded_user = "alice@corp.example.test",
                      .certificate = &cert,
                      .client_address = "192.0.2.7",
                      .authorization = "Negotiate YIIG"});
  EXPECT_EQ(out.count("X-Forwarded-User"), 1u);
  EXPECT_EQ(out["X-Forwarded-User"], "alice@corp.example.test");
  EXPECT_EQ(out["X-Forwarded-Client-Cert"], "Hash=ab12;Subject=\"CN=WorkspaceONEUEM.alice,O=Quote\\\"Back\\\\slash\"");
  EXPECT_EQ(out["X-Forwarded-For"], "192.0.2.7");
  EXPECT_EQ(out["X-Forwarded-Proto"], "https");
  EXPECT_EQ(out.count(http::field::authorization), 1u);
  EXPECT_EQ(out[http::field::authorization], "Negotiate YIIG");
}

// issue 17: a backend's own identity header names join the strip list in any spelling, easedge's values go in
// them, and an empty certificate header name sends none.
UpstreamForm sogo_form() {
  return {.identity_header = "x-webobjects-remote-user",
          .identity_format = config::IdentityFormat::upn_local_part,
          .client_cert_header = "",
          .path_prefix = "/SOGo",
          .keep_alive = false};
}

TEST(ForwardedRequest, ConfiguredIdentityHeadersAreStrippedInAnySpellingAndSetByEasedge) {
  auto head = hostile_request();
  for (const char* name : {"X-Site-User", "x-site-user", "X_SITE_USER", "x_Site-user", "X-Site-Cert", "x_site_cert"})
    head.insert(name, "spoofed");
  HeaderPolicy policy({}, {.identity_header = "X-Site-User", .client_cert_header = "x-site-cert"});
  auth::ClientCertificate cert;
  cert.leaf = auth::SharedX509(X509_new(), X509_free);
  cert.sha256_hex = "ab12";
  auto out = forward(head, {BodyFraming::none, 0}, policy,
                     {.user = "alice@corp.example.test", .forwarded_user = "alice", .certificate = &cert});
  for (const auto& field : out) EXPECT_NE(field.value(), "spoofed") << field.name_string();
  EXPECT_EQ(out.count("X-Site-User"), 1u);
  EXPECT_EQ(out["X-Site-User"], "alice");
  EXPECT_EQ(out.count("X-Site-Cert"), 1u);
  EXPECT_EQ(out["X-Site-Cert"].substr(0, 10), "Hash=ab12;");
  // The built-in names stay stripped, and easedge no longer speaks in them.
  EXPECT_EQ(out.count("X-Forwarded-User"), 0u);
  EXPECT_EQ(out.count("X-Forwarded-Client-Cert"), 0u);
}

TEST(ForwardedRequest, SogoFormStripsSpoofedUsersAndSendsNoCertificateHeader) {
  auto head = hostile_request();
  head.insert("x-webobjects-remote-user", "bob");
  head.insert("X_WEBOBJECTS_REMOTE_USER", "bob");
  auth::ClientCertificate cert;
  cert.leaf = auth::SharedX509(X509_new(), X509_free);
  auto out = forward(head, {BodyFraming::none, 0}, HeaderPolicy({}, sogo_form()),
                     {.user = "alice@corp.example.test", .forwarded_user = "alice", .certificate = &cert});
  EXPECT_EQ(out.count("x-webobjects-remote-user"), 1u);
  EXPECT_EQ(out["x-webobjects-remote-user"], "alice");
  EXPECT_EQ(out.count("X_WEBOBJECTS_REMOTE_USER"), 0u);
  EXPECT_EQ(out.count(http::field::authorization), 0u);
  EXPECT_EQ(out.count("X-Forwarded-Client-Cert"), 0u);
  for (const auto& field : out) EXPECT_NE(field.value(), "bob") << field.name_string();
}

TEST(ForwardedRequest, PathPrefixGoesBeforeTheTargetAndTheQueryIsByteIdentical) {
  auto head = hostile_request();
  for (const char* target : {"/Microsoft-Server-ActiveSync", "/Microsoft-Server-ActiveSync?Cmd=Sync&User=a%40b&x=%2F..%2F",
                             "/Microsoft-Server-ActiveSync?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l+/==",
                             "/Microsoft-Server-ActiveSync/?Cmd=Ping&&;=?#"}) {
    head.target(target);
    EXPECT_EQ(forward(head, {BodyFraming::none, 0}, HeaderPolicy({}, sogo_form())).target(),
              std::string("/SOGo") + target);
    EXPECT_EQ(forward(head, {BodyFraming::none, 0}).target(), target);
  }
}

TEST(ForwardedRequest, WithoutKeepaliveEveryRequestSaysConnectionClose) {
  auto head = hostile_request();  // the device asked for keep-alive: that is between it and easedge
  auto out = forward(head, {BodyFraming::none, 0}, HeaderPolicy({}, sogo_form()));
  EXPECT_FALSE(out.keep_alive());
  EXPECT_EQ(out[http::field::connection], "close");
  EXPECT_TRUE(forward(head, {BodyFraming::none, 0}).keep_alive());
  EXPECT_EQ(forward(head, {BodyFraming::none, 0}).count(http::field::connection), 0u);
}

TEST(ForwardedUserName, EachFormatAndNeverAnUnsafeValue) {
  mapping::MappedAccount account{.sam_account_name = "alice", .user_principal_name = "Alice.Smith@corp.example.test",
                                 .mail = "alice.smith@example.org"};
  using config::IdentityFormat;
  EXPECT_EQ(forwarded_user_name(account, IdentityFormat::upn), "Alice.Smith@corp.example.test");
  EXPECT_EQ(forwarded_user_name(account, IdentityFormat::sam_account_name), "alice");
  EXPECT_EQ(forwarded_user_name(account, IdentityFormat::upn_local_part), "Alice.Smith");
  EXPECT_EQ(forwarded_user_name(account, IdentityFormat::mail), "alice.smith@example.org");
  account.user_principal_name = "odd@name@corp.example.test";  // the realm follows the last '@'
  EXPECT_EQ(forwarded_user_name(account, IdentityFormat::upn_local_part), "odd@name");
  // What the directory lacks, or what would split the head, is "" (the session refuses the request).
  EXPECT_EQ(forwarded_user_name(mapping::MappedAccount{.user_principal_name = "a@b"}, IdentityFormat::mail), "");
  EXPECT_EQ(forwarded_user_name(mapping::MappedAccount{.user_principal_name = "@corp"}, IdentityFormat::upn_local_part), "");
  for (const std::string& hostile : {std::string("alice\r\nX-Forwarded-User: ceo"), std::string("alice\n"),
                                     std::string("al\0ice", 6), std::string("a\x7f")}) {
    mapping::MappedAccount bad{.sam_account_name = hostile, .user_principal_name = hostile + "@corp", .mail = hostile};
    for (auto format : {IdentityFormat::upn, IdentityFormat::sam_account_name, IdentityFormat::upn_local_part,
                        IdentityFormat::mail})
      EXPECT_EQ(forwarded_user_name(bad, format), "");
  }
}

// The trailer bug: trailers land in the parser's message after the head was read. The forwarded message
// is a different object, so whatever the parser merges later never reaches the serializer.
TEST(ForwardedRequest, TrailersParsedAfterTheHeadNeverCross) {
  http::request_parser<http::string_body> parser;
  boost::beast::error_code ec;
  std::string head = "POST /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  parser.eager(false);
  parser.put(boost::asio::buffer(head), ec);
  ASSERT_FALSE(ec);
  ASSERT_TRUE(parser.is_header_done());
  auto out = forward(parser.get(), {BodyFraming::chunked, 0});
  std::string body = "1\r\nx\r\n0\r\nX-Forwarded-User: administrator@corp\r\nX-Original-URL: /ecp/\r\n\r\n";
  parser.eager(true);
  parser.put(boost::asio::buffer(body), ec);
  ASSERT_FALSE(ec);
  ASSERT_TRUE(parser.is_done());
  EXPECT_EQ(parser.get().count("X-Forwarded-User"), 1u);  // the parser did merge it
  EXPECT_EQ(out.count("X-Forwarded-User"), 0u);
  EXPECT_EQ(out.count("X-Original-URL"), 0u);
}

// A read that brings no body bytes must not end the body: Beast's chunked serializer writes an empty buffer
// as a zero-size chunk, which is the terminator to the next hop (the fuzzer found it).
TEST(SetBodyPiece, AnEmptyPieceWritesNoChunk) {
  http::request_header<> head;
  head.method(http::verb::post);
  head.target("/Microsoft-Server-ActiveSync");
  head.insert(http::field::host, "h");
  auto out = forward(head, {BodyFraming::chunked, 0});
  http::request_serializer<http::buffer_body> serializer(out);
  std::string wire;
  auto drain = [&] {
    boost::beast::error_code ec;
    while (!serializer.is_done()) {
      serializer.next(ec, [&](boost::beast::error_code&, const auto& buffers) {
        for (auto b : boost::beast::buffers_range_ref(buffers)) wire.append(static_cast<const char*>(b.data()), b.size());
        serializer.consume(boost::beast::buffer_bytes(buffers));
      });
      if (ec) return;
    }
  };
  char data[] = "abc";
  set_body_piece(out.body(), data, 0, true);
  drain();
  set_body_piece(out.body(), data, 3, true);
  drain();
  set_body_piece(out.body(), data, 0, false);
  drain();
  auto body = wire.substr(wire.find("\r\n\r\n") + 4);
  EXPECT_EQ(body, "3\r\nabc\r\n0\r\n\r\n");
}

TEST(DeviceResponse, DropsHopByHopKeepsExchangeHeaders) {
  http::response_header<> f;
  f.result(200);
  f.version(11);
  f.insert("Connection", "close, X-Hop");
  f.insert("X-Hop", "1");
  f.insert("Keep-Alive", "timeout=5");
  f.insert("Content-Length", "12");
  f.insert("MS-ASProtocolVersions", "14.1,16.1");
  f.insert("X-MS-Location", "https://other.example.test/Microsoft-Server-ActiveSync");
  auto out = device_response(f, {BodyFraming::content_length, 12}, 11, true);
  EXPECT_EQ(out.count("X-Hop"), 0u);
  EXPECT_EQ(out.count("Keep-Alive"), 0u);
  EXPECT_EQ(out.count(http::field::connection), 0u);
  EXPECT_EQ(out["MS-ASProtocolVersions"], "14.1,16.1");
  EXPECT_EQ(out.count("X-MS-Location"), 1u);
  EXPECT_EQ(out[http::field::content_length], "12");
  EXPECT_TRUE(out.keep_alive());
}

TEST(DeviceResponse, FramesUnknownLengthsForTheDevicesVersion) {
  http::response_header<> f;
  f.result(200);
  f.version(10);
  f.insert("Transfer-Encoding", "chunked");
  auto http11 = device_response(f, {BodyFraming::until_close, 0}, 11, true);
  EXPECT_EQ(http11[http::field::transfer_encoding], "chunked");
  EXPECT_TRUE(http11.keep_alive());
  auto http10 = device_response(f, {BodyFraming::chunked, 0}, 10, true);
  EXPECT_EQ(http10.count(http::field::transfer_encoding), 0u);
  EXPECT_FALSE(http10.keep_alive());
}

TEST(SafeHeaderValue, RejectsControlBytes) {
  EXPECT_TRUE(is_safe_header_value("alice@corp.example.test"));
  EXPECT_TRUE(is_safe_header_value("tab\tinside"));
  EXPECT_FALSE(is_safe_header_value("alice\r\nX-Forwarded-User: ceo"));
  EXPECT_FALSE(is_safe_header_value(std::string_view("nul\0byte", 8)));
  EXPECT_FALSE(is_safe_header_value("del\x7f"));
}

}  // namespace
}  // namespace easedge::proxy
