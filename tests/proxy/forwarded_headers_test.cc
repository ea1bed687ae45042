// The heads easedge forwards: built from its parse, spoofed identity and routing headers and hop-by-hop
// fields never reach Exchange, framing is easedge's own, trailers never cross.
#include "proxy/forwarded_headers.h"
#include "proxy/outgoing_body.h"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

#include <cctype>
#include <string>

namespace easedge::proxy {
namespace {

RequestHead hostile_request() {
  RequestHead f;
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

// What the next hop reads from the bytes easedge writes: the whole of them is exactly one head.
template <bool is_request>
http::message<is_request, http::empty_body> parse_head(const std::string& bytes) {
  http::parser<is_request, http::empty_body> parser;
  parser.eager(false);
  boost::beast::error_code ec;
  auto used = parser.put(boost::asio::buffer(bytes), ec);
  EXPECT_FALSE(ec) << ec.message() << "\n" << bytes;
  EXPECT_TRUE(parser.is_header_done()) << bytes;
  EXPECT_EQ(used, bytes.size()) << bytes;
  return parser.release();
}

constexpr std::string_view test_request_id = "00000000000000a1";

http::request<http::empty_body> forward(const RequestHead& head,
                                        Framing framing = {BodyFraming::content_length, 5},
                                        const HeaderPolicy& policy = HeaderPolicy(),
                                        const ForwardedIdentity& identity = {}) {
  OutgoingHead out;
  write_forwarded_request(out, head, framing, policy, identity, test_request_id);
  auto parsed = parse_head<true>(out.bytes);
  EXPECT_EQ(out.keep_alive, parsed.keep_alive());
  EXPECT_EQ(out.chunked, framing.kind == BodyFraming::chunked);
  return parsed;
}

http::response<http::empty_body> respond(const ResponseHead& head, Framing framing, unsigned version,
                                         bool keep_alive, OutgoingHead& out) {
  write_device_response(out, head, framing, version, keep_alive);
  auto parsed = parse_head<false>(out.bytes);
  EXPECT_EQ(out.keep_alive, parsed.keep_alive());
  return parsed;
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

TEST(ForwardedRequest, CarriesEasedgesRequestIdNeverTheDevices) {
  auto head = hostile_request();
  head.insert("X-Request-Id", "device-chosen");
  head.insert("x_request_id", "device-chosen");
  auto out = forward(head);
  EXPECT_EQ(out.count("X-Request-Id"), 1u);
  EXPECT_EQ(out["X-Request-Id"], test_request_id);
  EXPECT_EQ(out.count("x_request_id"), 0u);
}

TEST(ForwardedRequest, FieldsGoOutInTheirParsedOrderAndSpelling) {
  RequestHead head;
  head.method_string("PROPFIND");  // a verb Beast does not know goes out as sent
  head.target("/Microsoft-Server-ActiveSync?Cmd=Ping");
  head.insert("host", "mail.example.test");
  head.insert("ms-asprotocolversion", "14.1");
  head.insert("X-Custom", "b");
  head.insert("x-custom", "a");
  OutgoingHead out;
  write_forwarded_request(out, head, {BodyFraming::content_length, 12}, HeaderPolicy(), {}, test_request_id);
  EXPECT_EQ(out.bytes,
            "PROPFIND /Microsoft-Server-ActiveSync?Cmd=Ping HTTP/1.1\r\n"
            "Host: mail.example.test\r\n"
            "ms-asprotocolversion: 14.1\r\n"
            "X-Custom: b\r\n"
            "x-custom: a\r\n"
            "Content-Length: 12\r\n"
            "X-Forwarded-Proto: https\r\n"
            "X-Request-Id: 00000000000000a1\r\n"
            "\r\n");
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

// The forwarding path decides a field Beast knows by its enum: for every field Beast has a name for, in the
// spellings a device could send, that answer is the name comparison's.
TEST(ForwardedRequest, AFieldsEnumStripsItExactlyAsItsNameDoes) {
  HeaderPolicy policy({"Accept-Language", "x-site-route", "Via"}, sogo_form());
  for (int value = 1; value <= static_cast<int>(http::field::xref); ++value) {
    auto known = static_cast<http::field>(value);
    std::string name(http::to_string(known));
    std::string upper = name;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (const auto& spelling : {name, upper}) {
      ASSERT_EQ(http::string_to_field(spelling), known) << spelling;
      EXPECT_EQ(policy.strips_request_field(known, spelling), policy.strips_request_header(spelling)) << spelling;
    }
  }
  for (auto known : {http::field::connection, http::field::content_length, http::field::transfer_encoding,
                     http::field::host, http::field::authorization, http::field::via, http::field::accept_language})
    EXPECT_TRUE(policy.strips_request_field(known, http::to_string(known))) << http::to_string(known);
  EXPECT_FALSE(policy.strips_request_field(http::field::user_agent, "User-Agent"));
  EXPECT_TRUE(policy.strips_request_field(http::field::unknown, "X_Site_Route"));
  EXPECT_FALSE(policy.strips_request_field(http::field::unknown, "X-Site-Routes"));
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
  RequestHeadParser<http::string_body> parser;
  boost::beast::error_code ec;
  std::string head = "POST /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  parser.eager(false);
  parser.put(boost::asio::buffer(head), ec);
  ASSERT_FALSE(ec);
  ASSERT_TRUE(parser.is_header_done());
  OutgoingHead out;
  write_forwarded_request(out, parser.get(), {BodyFraming::chunked, 0}, HeaderPolicy(), {}, test_request_id);
  std::string body = "1\r\nx\r\n0\r\nX-Forwarded-User: administrator@corp\r\nX-Original-URL: /ecp/\r\n\r\n";
  parser.eager(true);
  parser.put(boost::asio::buffer(body), ec);
  ASSERT_FALSE(ec);
  ASSERT_TRUE(parser.is_done());
  EXPECT_EQ(parser.get().count("X-Forwarded-User"), 1u);  // the parser did merge it
  auto forwarded = parse_head<true>(out.bytes);
  EXPECT_EQ(forwarded.count("X-Forwarded-User"), 0u);
  EXPECT_EQ(forwarded.count("X-Original-URL"), 0u);
}

std::string concatenated(const OutgoingBody::Buffers& buffers) {
  std::string out;
  for (const auto& buffer : buffers) out.append(static_cast<const char*>(buffer.data()), buffer.size());
  return out;
}

// A read that brings no body bytes must not end the body: a zero-size chunk is the terminator to the next
// hop (the rest of the body would then be parsed as another message; the fuzzer found it once).
TEST(OutgoingBody, AnEmptyPieceWritesNoChunk) {
  OutgoingBody body(true);
  char data[] = "abc";
  std::string wire = concatenated(body.frame("HEAD\r\n\r\n", data, 0, false));
  wire += concatenated(body.frame({}, data, 3, false));
  wire += concatenated(body.frame({}, data, 0, false));
  wire += concatenated(body.frame({}, data, 0, true));
  EXPECT_EQ(wire, "HEAD\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
}

TEST(OutgoingBody, ChunkSizesAreHexAndTheLastPieceCarriesTheEnd) {
  OutgoingBody body(true);
  std::string data(0x1a2b, 'x');
  auto wire = concatenated(body.frame({}, data.data(), data.size(), true));
  EXPECT_EQ(wire, "1a2b\r\n" + data + "\r\n0\r\n\r\n");
}

TEST(OutgoingBody, ALengthFramedBodyGoesAsItCame) {
  OutgoingBody body(false);
  char data[] = "0\r\n\r\n";
  EXPECT_EQ(concatenated(body.frame("H", data, 5, false)), "H0\r\n\r\n");
  EXPECT_EQ(concatenated(body.frame({}, data, 0, true)), "");
}

TEST(DeviceResponse, DropsHopByHopKeepsExchangeHeaders) {
  ResponseHead f;
  f.result(200);
  f.version(11);
  f.insert("Connection", "close, X-Hop");
  f.insert("X-Hop", "1");
  f.insert("Keep-Alive", "timeout=5");
  f.insert("Content-Length", "12");
  f.insert("MS-ASProtocolVersions", "14.1,16.1");
  f.insert("X-MS-Location", "https://other.example.test/Microsoft-Server-ActiveSync");
  OutgoingHead head;
  auto out = respond(f, {BodyFraming::content_length, 12}, 11, true, head);
  EXPECT_EQ(out.count("X-Hop"), 0u);
  EXPECT_EQ(out.count("Keep-Alive"), 0u);
  EXPECT_EQ(out.count(http::field::connection), 0u);
  EXPECT_EQ(out["MS-ASProtocolVersions"], "14.1,16.1");
  EXPECT_EQ(out.count("X-MS-Location"), 1u);
  EXPECT_EQ(out[http::field::content_length], "12");
  EXPECT_TRUE(out.keep_alive());
}

TEST(DeviceResponse, FramesUnknownLengthsForTheDevicesVersion) {
  ResponseHead f;
  f.result(200);
  f.version(10);
  f.insert("Transfer-Encoding", "chunked");
  OutgoingHead head;
  auto http11 = respond(f, {BodyFraming::until_close, 0}, 11, true, head);
  EXPECT_EQ(http11[http::field::transfer_encoding], "chunked");
  EXPECT_TRUE(head.chunked);
  EXPECT_TRUE(http11.keep_alive());
  auto http10 = respond(f, {BodyFraming::chunked, 0}, 10, true, head);
  EXPECT_EQ(http10.count(http::field::transfer_encoding), 0u);
  EXPECT_FALSE(head.chunked);
  EXPECT_FALSE(http10.keep_alive());
  auto sized10 = respond(f, {BodyFraming::content_length, 3}, 10, true, head);
  EXPECT_EQ(sized10[http::field::connection], "keep-alive");
  EXPECT_TRUE(sized10.keep_alive());
}

TEST(DeviceResponse, StatusLineIsRebuiltFromTheParse) {
  ResponseHead f;
  f.result(451);
  f.reason("Redirect");
  f.version(11);
  f.insert("X-MS-Location", "https://other.example.test/Microsoft-Server-ActiveSync");
  OutgoingHead head;
  write_device_response(head, f, {BodyFraming::content_length, 0}, 11, false);
  EXPECT_EQ(head.bytes,
            "HTTP/1.1 451 Redirect\r\n"
            "X-MS-Location: https://other.example.test/Microsoft-Server-ActiveSync\r\n"
            "Content-Length: 0\r\n"
            "Connection: close\r\n"
            "\r\n");
  f.reason("");  // no reason phrase: Beast's parse gives the standard one for the status
  f.result(200);
  write_device_response(head, f, {BodyFraming::none, 0}, 11, true);
  EXPECT_EQ(head.bytes.substr(0, head.bytes.find("\r\n")), "HTTP/1.1 200 OK");
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
