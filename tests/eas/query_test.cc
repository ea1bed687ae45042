// ActiveSync query parsing: the spec example, every tag, hostile base64 bytes, and plain-form edge cases.
#include "eas/query.h"

#include <boost/url/parse.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <string>
#include <vector>

namespace easedge::eas {
namespace {

using Bytes = std::vector<unsigned char>;

std::string base64(const Bytes& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

void append_counted(Bytes& out, std::string_view value) {
  out.push_back(static_cast<unsigned char>(value.size()));
  out.insert(out.end(), value.begin(), value.end());
}

// Version 14.1, Sync, en-US, DeviceId ABC123, no PolicyKey, DeviceType iPhone, then TAGS.
Bytes header(std::uint8_t command = 0) {
  Bytes out{141, command, 0x09, 0x04};
  append_counted(out, "ABC123");
  out.push_back(0);
  append_counted(out, "iPhone");
  return out;
}

Bytes with_tag(Bytes out, std::uint8_t tag, std::string_view value) {
  out.push_back(tag);
  append_counted(out, value);
  return out;
}

QueryErrc error_of(std::string_view method, std::string_view query) {
  auto result = parse_query(method, query);
  EXPECT_FALSE(result.has_value()) << query;
  return result.has_value() ? QueryErrc::bad_value : result.error().code;
}

QueryErrc error_of(std::string_view query) { return error_of("POST", query); }

TEST(QueryBase64, SpecExample) {
  auto result = parse_query("POST", "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l");
  ASSERT_TRUE(result.has_value()) << result.error().reason;
  const auto& r = *result;
  EXPECT_EQ(r.form, QueryForm::base64);
  EXPECT_EQ(r.protocol_version, "14.0");
  ASSERT_TRUE(r.command);
  EXPECT_EQ(*r.command, Command::sync);
  EXPECT_EQ(command_name(*r.command), "Sync");
  EXPECT_EQ(r.locale, 0x0409);
  EXPECT_EQ(r.device_id, "v140Device");
  EXPECT_FALSE(r.policy_key);
  EXPECT_EQ(r.device_type, "SmartPhone");
  EXPECT_TRUE(r.user.empty());
}

TEST(QueryBase64, EveryVersion) {
  for (auto [code, text] : std::vector<std::pair<int, std::string>>{
           {121, "12.1"}, {140, "14.0"}, {141, "14.1"}, {160, "16.0"}, {161, "16.1"}}) {
    Bytes bytes = header();
    bytes[0] = static_cast<unsigned char>(code);
    auto result = parse_query("POST", base64(bytes));
    ASSERT_TRUE(result.has_value()) << code;
    EXPECT_EQ(result->protocol_version, text);
  }
  for (int code : {0, 25, 120, 122, 142, 162, 255}) {
    Bytes bytes = header();
    bytes[0] = static_cast<unsigned char>(code);
    EXPECT_EQ(error_of(base64(bytes)), QueryErrc::unknown_version) << code;
  }
}

TEST(QueryBase64, EveryCommandCode) {
  int known = 0;
  for (int code = 0; code < 256; ++code) {
    auto result = parse_query("POST", base64(header(static_cast<std::uint8_t>(code))));
    auto command = command_from_code(static_cast<std::uint8_t>(code));
    if (!command) {
      ASSERT_FALSE(result.has_value()) << code;
      EXPECT_EQ(result.error().code, QueryErrc::unknown_command) << code;
      continue;
    }
    ++known;
    ASSERT_TRUE(result.has_value()) << code;
    EXPECT_EQ(result->command, command);
    EXPECT_EQ(command_from_name(command_name(*command)), command);
  }
  EXPECT_EQ(known, 20);  // 0..4 and 9..23
  EXPECT_EQ(command_from_code(18), Command::ping);
  EXPECT_EQ(command_from_code(9), Command::folder_sync);
  EXPECT_FALSE(command_from_code(5));
  EXPECT_FALSE(command_from_code(24));
}

TEST(QueryBase64, EveryTag) {
  Bytes bytes = header(4);
  bytes = with_tag(bytes, 0, "att:1");
  bytes = with_tag(bytes, 1, "5");
  bytes = with_tag(bytes, 3, "5:12");
  bytes = with_tag(bytes, 4, "RgAAAAD");
  bytes = with_tag(bytes, 6, "2024-01-01T00:00:00.000Z");
  bytes = with_tag(bytes, 7, std::string_view("\x03", 1));
  bytes = with_tag(bytes, 8, "CORP\\alice");
  auto result = parse_query("POST", base64(bytes));
  ASSERT_TRUE(result.has_value()) << result.error().reason;
  const auto& r = *result;
  EXPECT_EQ(r.command, Command::get_attachment);
  EXPECT_EQ(r.attachment_name, "att:1");
  EXPECT_EQ(r.collection_id, "5");
  EXPECT_EQ(r.item_id, "5:12");
  EXPECT_EQ(r.long_id, "RgAAAAD");
  EXPECT_EQ(r.occurrence, "2024-01-01T00:00:00.000Z");
  EXPECT_TRUE(r.save_in_sent);
  EXPECT_TRUE(r.accept_multipart);
  EXPECT_EQ(r.user, "CORP\\alice");
}

TEST(QueryBase64, OptionsFlagsSeparately) {
  auto save = parse_query("POST", base64(with_tag(header(1), 7, std::string_view("\x01", 1))));
  ASSERT_TRUE(save.has_value());
  EXPECT_TRUE(save->save_in_sent);
  EXPECT_FALSE(save->accept_multipart);
  auto multipart = parse_query("POST", base64(with_tag(header(19), 7, std::string_view("\x02", 1))));
  ASSERT_TRUE(multipart.has_value());
  EXPECT_FALSE(multipart->save_in_sent);
  EXPECT_TRUE(multipart->accept_multipart);
  EXPECT_EQ(error_of(base64(with_tag(header(1), 7, ""))), QueryErrc::bad_value);
  EXPECT_EQ(error_of(base64(with_tag(header(1), 7, "ab"))), QueryErrc::bad_value);
}

TEST(QueryBase64, UnknownAndDuplicateTags) {
  for (int tag : {2, 5, 9, 10, 32, 255}) {
    EXPECT_EQ(error_of(base64(with_tag(header(), static_cast<std::uint8_t>(tag), "x"))), QueryErrc::unknown_parameter)
        << tag;
  }
  EXPECT_EQ(error_of(base64(with_tag(with_tag(header(), 8, "alice"), 8, "bob"))), QueryErrc::duplicate_parameter);
}

TEST(QueryBase64, PolicyKey) {
  Bytes bytes{161, 18, 0x07, 0x04};
  append_counted(bytes, "DEV1");
  append_counted(bytes, std::string_view("\x78\x56\x34\x12", 4));
  append_counted(bytes, "Android");
  auto result = parse_query("POST", base64(bytes));
  ASSERT_TRUE(result.has_value()) << result.error().reason;
  EXPECT_EQ(result->policy_key, 0x12345678u);
  EXPECT_EQ(result->command, Command::ping);
  EXPECT_EQ(result->locale, 0x0407);
  EXPECT_EQ(result->protocol_version, "16.1");

  for (std::string_view key : {std::string_view("\x01", 1), std::string_view("\x01\x02\x03", 3),
                               std::string_view("\x01\x02\x03\x04\x05", 5)}) {
    Bytes bad{141, 0, 9, 4};
    append_counted(bad, "DEV1");
    append_counted(bad, key);
    append_counted(bad, "Android");
    EXPECT_EQ(error_of(base64(bad)), QueryErrc::bad_value) << key.size();
  }
}

TEST(QueryBase64, BinaryGuidDeviceIdBecomesHex) {
  Bytes bytes{141, 0, 9, 4, 16};
  for (unsigned char c = 0; c < 16; ++c) bytes.push_back(static_cast<unsigned char>(c * 17));
  bytes.push_back(0);
  append_counted(bytes, "WP");
  auto result = parse_query("POST", base64(bytes));
  ASSERT_TRUE(result.has_value()) << result.error().reason;
  EXPECT_EQ(result->device_id, "00112233445566778899AABBCCDDEEFF");
}

TEST(QueryBase64, DeviceIdAndTypeRules) {
  auto make = [](std::string_view id, std::string_view type) {
    Bytes bytes{141, 0, 9, 4};
    append_counted(bytes, id);
    bytes.push_back(0);
    append_counted(bytes, type);
    return base64(bytes);
  };
  EXPECT_TRUE(parse_query("POST", make(std::string(32, 'a'), "x")).has_value());
  EXPECT_EQ(error_of(make(std::string(33, 'a'), "x")), QueryErrc::bad_value);
  EXPECT_EQ(error_of(make("", "x")), QueryErrc::bad_value);
  EXPECT_EQ(error_of(make("abc-def", "x")), QueryErrc::bad_value);
  EXPECT_EQ(error_of(make("ABC", "")), QueryErrc::bad_value);
  EXPECT_EQ(error_of(make("ABC", "i Phone")), QueryErrc::bad_value);
  EXPECT_EQ(error_of(make("ABC", "i\nPhone")), QueryErrc::bad_value);
  EXPECT_EQ(error_of(make("ABC", "\xc3\xa9")), QueryErrc::bad_value);
}

TEST(QueryBase64, ControlCharactersInValuesRefused) {
  EXPECT_EQ(error_of(base64(with_tag(header(), 8, "alice\r\nX-Evil: 1"))), QueryErrc::bad_value);
  EXPECT_EQ(error_of(base64(with_tag(header(), 8, std::string_view("al\0ice", 6)))), QueryErrc::bad_value);
  EXPECT_EQ(error_of(base64(with_tag(header(), 1, ""))), QueryErrc::bad_value);
}

TEST(QueryBase64, TruncatedAtEveryByte) {
  Bytes with_user = with_tag(header(3), 8, "alice@corp.example.test");
  Bytes full = with_tag(with_user, 7, std::string_view("\x01", 1));
  ASSERT_TRUE(parse_query("POST", base64(full)).has_value());
  // Cutting exactly between the fixed fields and a tag, or between two tags, leaves a shorter valid query;
  // every other cut leaves a length byte (or a fixed field) pointing past the end.
  std::vector<std::size_t> complete{header().size(), with_user.size()};
  for (std::size_t length = 1; length < full.size(); ++length) {
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(length));
    auto result = parse_query("POST", base64(cut));
    if (std::find(complete.begin(), complete.end(), length) != complete.end()) {
      EXPECT_TRUE(result.has_value()) << "length " << length;
      continue;
    }
    ASSERT_FALSE(result.has_value()) << "length " << length;
    EXPECT_EQ(result.error().code, QueryErrc::truncated) << "length " << length << ": " << result.error().reason;
  }
}

TEST(QueryBase64, OversizedLengths) {
  // Each length byte claims more than what follows.
  Bytes device_id{141, 0, 9, 4, 200, 'A', 'B'};
  EXPECT_EQ(error_of(base64(device_id)), QueryErrc::truncated);
  Bytes policy{141, 0, 9, 4, 1, 'A', 255, 1, 2};
  EXPECT_EQ(error_of(base64(policy)), QueryErrc::truncated);
  Bytes type{141, 0, 9, 4, 1, 'A', 0, 255, 'x'};
  EXPECT_EQ(error_of(base64(type)), QueryErrc::truncated);
  Bytes tag = header();
  tag.insert(tag.end(), {8, 255, 'a', 'b'});
  EXPECT_EQ(error_of(base64(tag)), QueryErrc::truncated);
  // The largest length a byte can hold, fully present, is fine for a free-form value.
  auto longest = parse_query("POST", base64(with_tag(header(), 8, std::string(255, 'u'))));
  ASSERT_TRUE(longest.has_value());
  EXPECT_EQ(longest->user.size(), 255u);
}

TEST(QueryBase64, TrailingGarbage) {
  Bytes bytes = header();
  bytes.push_back(8);  // a tag with no length
  EXPECT_EQ(error_of(base64(bytes)), QueryErrc::truncated);
  bytes.push_back(0x7f);  // a length pointing past the end
  EXPECT_EQ(error_of(base64(bytes)), QueryErrc::truncated);
  // Text after a '=' reads as a key=value pair, whose key is no ActiveSync parameter.
  EXPECT_EQ(error_of(base64(header()) + "=A"), QueryErrc::unknown_parameter);
}

TEST(QueryBase64, BadBase64) {
  EXPECT_EQ(error_of("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25"), QueryErrc::bad_base64);    // not a multiple of 4
  EXPECT_EQ(error_of("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob2!"), QueryErrc::bad_base64);
  EXPECT_EQ(error_of("jAAJBAp2MTQw*GV2aWNlAApTbWFydFBob25l"), QueryErrc::bad_base64);
  EXPECT_EQ(error_of("jAAJ=Ap2MTQwRGV2aWNlAApTbWFydFBob25l"), QueryErrc::unknown_parameter);  // '=' inside
  EXPECT_EQ(error_of("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob2%20"), QueryErrc::bad_base64);  // escaped space
  EXPECT_EQ(error_of("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob2%"), QueryErrc::bad_encoding);
  EXPECT_EQ(error_of("===="), QueryErrc::bad_base64);
  EXPECT_EQ(error_of("A==="), QueryErrc::bad_base64);
}

TEST(QueryBase64, PaddingAndEscapedCharacters) {
  // Three value lengths give all three paddings: none, "=" and "==".
  for (std::size_t extra = 0; extra < 3; ++extra) {
    Bytes b = with_tag(header(), 8, std::string(1 + extra, 'u'));
    std::string text = base64(b);
    ASSERT_TRUE(parse_query("POST", text).has_value()) << text;
    std::string escaped = text;
    for (std::size_t pos; (pos = escaped.find('=')) != std::string::npos;) escaped.replace(pos, 1, "%3D");
    auto result = parse_query("POST", escaped);
    ASSERT_TRUE(result.has_value()) << escaped;
    EXPECT_EQ(result->user, std::string(1 + extra, 'u'));
  }
  // '+' and '/' are base64 digits, also when percent-encoded; never a space.
  Bytes plus = with_tag(header(), 8, "\xfb\xef");
  std::string text = base64(plus);
  ASSERT_NE(text.find_first_of("+/"), std::string::npos) << text;
  EXPECT_EQ(parse_query("POST", text)->user, "\xfb\xef");
}

TEST(QueryPlain, Basic) {
  auto result = parse_query("POST", "Cmd=Sync&User=alice&DeviceId=ABC123&DeviceType=iPhone");
  ASSERT_TRUE(result.has_value()) << result.error().reason;
  const auto& r = *result;
  EXPECT_EQ(r.form, QueryForm::plain);
  EXPECT_EQ(r.command, Command::sync);
  EXPECT_EQ(r.user, "alice");
  EXPECT_EQ(r.device_id, "ABC123");
  EXPECT_EQ(r.device_type, "iPhone");
  EXPECT_TRUE(r.protocol_version.empty());
  EXPECT_FALSE(r.locale);
  EXPECT_FALSE(r.policy_key);
}

TEST(QueryPlain, AllParametersDecoded) {
  auto result = parse_query("POST",
                            "Cmd=SmartReply&User=CORP%5Calice&DeviceId=ABC&DeviceType=SAMSUNGSMG991B"
                            "&CollectionId=5&ItemId=5%3A12&LongId=RgA%2BAA&Occurrence=2024-01-01T00%3A00%3A00.000Z"
                            "&AttachmentName=a+b.txt&SaveInSent=T");
  ASSERT_TRUE(result.has_value()) << result.error().reason;
  const auto& r = *result;
  EXPECT_EQ(r.command, Command::smart_reply);
  EXPECT_EQ(r.user, "CORP\\alice");
  EXPECT_EQ(r.collection_id, "5");
  EXPECT_EQ(r.item_id, "5:12");
  EXPECT_EQ(r.long_id, "RgA+AA");
  EXPECT_EQ(r.occurrence, "2024-01-01T00:00:00.000Z");
  EXPECT_EQ(r.attachment_name, "a b.txt");  // '+' is a space, as ASP.NET decodes it
  EXPECT_TRUE(r.save_in_sent);
}

TEST(QueryPlain, NamesAreCaseInsensitive) {
  auto result = parse_query("POST", "cmd=ping&USER=alice@corp.example.test&deviceid=abc&devicetype=Android");
  ASSERT_TRUE(result.has_value()) << result.error().reason;
  EXPECT_EQ(result->command, Command::ping);
  EXPECT_EQ(result->user, "alice@corp.example.test");
}

TEST(QueryPlain, OrderDoesNotMatter) {
  auto result = parse_query("POST", "DeviceType=iPhone&DeviceId=A1&User=bob&Cmd=FolderSync");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->command, Command::folder_sync);
}

TEST(QueryPlain, PostNeedsCommandDeviceIdAndType) {
  EXPECT_EQ(error_of(""), QueryErrc::missing_parameter);
  EXPECT_EQ(error_of("User=alice&DeviceId=A&DeviceType=B"), QueryErrc::missing_parameter);
  EXPECT_EQ(error_of("Cmd=Sync&User=alice&DeviceType=B"), QueryErrc::missing_parameter);
  EXPECT_EQ(error_of("Cmd=Sync&User=alice&DeviceId=A"), QueryErrc::missing_parameter);
  // User is optional for the parser; the policy decides when it must be present.
  EXPECT_TRUE(parse_query("POST", "Cmd=Sync&DeviceId=A&DeviceType=B").has_value());
}

TEST(QueryPlain, OptionsAndGetNeedNoQuery) {
  for (std::string_view method : {"OPTIONS", "GET"}) {
    auto empty = parse_query(method, "");
    ASSERT_TRUE(empty.has_value());
    EXPECT_EQ(empty->form, QueryForm::none);
    EXPECT_FALSE(empty->command);
    // iOS sends its identity with OPTIONS.
    auto identified = parse_query(method, "User=alice&DeviceId=ABC&DeviceType=iPad");
    ASSERT_TRUE(identified.has_value());
    EXPECT_FALSE(identified->command);
    EXPECT_EQ(identified->device_id, "ABC");
    EXPECT_EQ(error_of(method, "User=alice&Bogus=1"), QueryErrc::unknown_parameter);
  }
}

TEST(QueryPlain, OtherMethodsRefused) {
  EXPECT_EQ(error_of("PUT", "Cmd=Sync&DeviceId=A&DeviceType=B"), QueryErrc::unsupported_method);
  EXPECT_EQ(error_of("post", "Cmd=Sync&DeviceId=A&DeviceType=B"), QueryErrc::unsupported_method);
  EXPECT_EQ(error_of("DELETE", ""), QueryErrc::unsupported_method);
}

TEST(QueryPlain, UnknownCommandRefused) {
  EXPECT_EQ(error_of("Cmd=Sync2&DeviceId=A&DeviceType=B"), QueryErrc::unknown_command);
  EXPECT_EQ(error_of("Cmd=GetHierarchy&DeviceId=A&DeviceType=B"), QueryErrc::unknown_command);  // protocol 2.5
  EXPECT_EQ(error_of("Cmd=Sync%00&DeviceId=A&DeviceType=B"), QueryErrc::unknown_command);
}

TEST(QueryPlain, DuplicatesRefusedWhateverTheCase) {
  EXPECT_EQ(error_of("Cmd=Sync&Cmd=Ping&DeviceId=A&DeviceType=B"), QueryErrc::duplicate_parameter);
  EXPECT_EQ(error_of("Cmd=Sync&cMD=Sync&DeviceId=A&DeviceType=B"), QueryErrc::duplicate_parameter);
  EXPECT_EQ(error_of("Cmd=Sync&User=a&User=b&DeviceId=A&DeviceType=B"), QueryErrc::duplicate_parameter);
  EXPECT_EQ(error_of("Cmd=Sync&Device%49d=A&DeviceId=C&DeviceType=B"), QueryErrc::duplicate_parameter);
}

TEST(QueryPlain, MalformedParameters) {
  EXPECT_TRUE(parse_query("POST", "Cmd=Sync&&DeviceId=A&DeviceType=B&").has_value());  // empty segments carry nothing
  EXPECT_EQ(error_of("Cmd=Sync&=x&DeviceId=A&DeviceType=B"), QueryErrc::unknown_parameter);  // empty name
  EXPECT_EQ(error_of("Cmd=Sync&User&DeviceId=A&DeviceType=B"), QueryErrc::bad_value);
  EXPECT_EQ(error_of("Cmd=Sync&User=&DeviceId=A&DeviceType=B"), QueryErrc::bad_value);
  EXPECT_EQ(error_of("Cmd=Sync&Foo=1&DeviceId=A&DeviceType=B"), QueryErrc::unknown_parameter);
  EXPECT_EQ(error_of("Cmd=Sync&Options=1&DeviceId=A&DeviceType=B"), QueryErrc::unknown_parameter);  // base64 only
  EXPECT_EQ(error_of("Cmd=Sync&User=a%zz&DeviceId=A&DeviceType=B"), QueryErrc::bad_encoding);
  EXPECT_EQ(error_of("Cmd=Sync&User=a b&DeviceId=A&DeviceType=B"), QueryErrc::bad_encoding);
  EXPECT_EQ(error_of("Cmd=Sync&User=DOMAIN\\alice&DeviceId=A&DeviceType=B"), QueryErrc::bad_encoding);
  EXPECT_EQ(error_of("Cmd=Sync&SaveInSent=yes&DeviceId=A&DeviceType=B"), QueryErrc::bad_value);
  EXPECT_EQ(error_of("Cmd=Sync&DeviceId=A-1&DeviceType=B"), QueryErrc::bad_value);
  EXPECT_EQ(error_of("Cmd=Sync&DeviceId=A&DeviceType=i+Phone"), QueryErrc::bad_value);
}

TEST(QueryPlain, HostileValues) {
  EXPECT_EQ(error_of("Cmd=Sync&User=alice%0D%0AX-Evil:%201&DeviceId=A&DeviceType=B"), QueryErrc::bad_value);
  EXPECT_EQ(error_of("Cmd=Sync&User=al%00ice&DeviceId=A&DeviceType=B"), QueryErrc::bad_value);
  EXPECT_EQ(error_of("Cmd=Sync&User=a%7F&DeviceId=A&DeviceType=B"), QueryErrc::bad_value);
  EXPECT_EQ(error_of("Cmd=Sync&DeviceId=A%00&DeviceType=B"), QueryErrc::bad_value);
  // UTF-8 in a user name is fine: AD names need not be ASCII.
  auto utf8 = parse_query("POST", "Cmd=Sync&User=j%C3%BCrgen&DeviceId=A&DeviceType=B");
  ASSERT_TRUE(utf8.has_value());
  EXPECT_EQ(utf8->user, "j\xc3\xbcrgen");
}

TEST(QueryPlain, Limits) {
  std::string at_limit(max_value_bytes, 'u');
  EXPECT_TRUE(parse_query("POST", "Cmd=Sync&User=" + at_limit + "&DeviceId=A&DeviceType=B").has_value());
  EXPECT_EQ(error_of("Cmd=Sync&User=" + at_limit + "u&DeviceId=A&DeviceType=B"), QueryErrc::too_long);
  // Escapes count decoded: 255 escaped bytes are 765 characters of query, and still fine.
  std::string escaped;
  for (std::size_t i = 0; i < max_value_bytes; ++i) escaped += "%41";
  EXPECT_TRUE(parse_query("POST", "Cmd=Sync&User=" + escaped + "&DeviceId=A&DeviceType=B").has_value());
  EXPECT_EQ(error_of("Cmd=Sync&DeviceId=" + std::string(max_device_id_chars + 1, 'A') + "&DeviceType=B"),
            QueryErrc::bad_value);
  EXPECT_TRUE(parse_query("POST", "Cmd=Sync&DeviceId=" + std::string(max_device_id_chars, 'A') + "&DeviceType=B").has_value());
  EXPECT_EQ(error_of(std::string(max_query_bytes + 1, 'A')), QueryErrc::too_long);
  EXPECT_EQ(error_of("Cmd=Sync&DeviceId=A&DeviceType=B&CollectionId=" + std::string(max_query_bytes, '1')),
            QueryErrc::too_long);
}

TEST(QueryForms, Detection) {
  // A trailing '=' run is base64 padding; anything after a '=' makes it plain.
  EXPECT_EQ(error_of("Cmd"), QueryErrc::bad_base64);
  EXPECT_EQ(error_of("Cmd="), QueryErrc::unknown_version);  // valid base64 of 2 bytes: version 10
  EXPECT_EQ(error_of("Cmd=Sync"), QueryErrc::missing_parameter);
  EXPECT_EQ(query_form_name(QueryForm::base64), "base64");
  EXPECT_EQ(query_errc_name(QueryErrc::truncated), "truncated");
}

TEST(Commands, TimeoutClass) {
  config::EasConfig config;
  config.ping_timeout = std::chrono::seconds(3600);
  config.command_timeout = std::chrono::seconds(600);
  EXPECT_EQ(timeout_class(Command::ping), TimeoutClass::long_held);
  EXPECT_EQ(timeout_class(Command::sync), TimeoutClass::long_held);
  EXPECT_EQ(timeout_class(Command::send_mail), TimeoutClass::normal);
  EXPECT_EQ(request_timeout(config, Command::ping), std::chrono::seconds(3600));
  EXPECT_EQ(request_timeout(config, Command::folder_sync), std::chrono::seconds(600));
  EXPECT_EQ(request_timeout(config, std::nullopt), std::chrono::seconds(600));
  EXPECT_EQ(command_from_name("itemoperations"), Command::item_operations);
  EXPECT_FALSE(command_from_name(""));
}

}  // namespace
}  // namespace easedge::eas

namespace easedge::eas {
namespace {

// A query inside an HTTP request line is not NUL-terminated: the parser must stop at the view's end.
TEST(QueryInsideRequestLine, ReadsOnlyTheGivenBytes) {
  std::string line = "Cmd=Sync&User=alice&DeviceId=ABC&DeviceType=iPhone\x01 HTTP/1.1\r\n";
  std::string_view query = std::string_view(line).substr(0, line.find('\x01'));
  auto result = parse_query("POST", query);
  ASSERT_TRUE(result.has_value()) << result.error().reason;
  EXPECT_EQ(result->device_type, "iPhone");
  std::string base64_line = "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l%%%garbage";
  auto base64 = parse_query("POST", std::string_view(base64_line).substr(0, 36));
  ASSERT_TRUE(base64.has_value()) << base64.error().reason;
  EXPECT_EQ(base64->device_id, "v140Device");
}

// The proxy hands over the query of the request target it has already parsed (a view into the request line,
// not NUL-terminated): every answer is the one the text gives.
TEST(QueryFromTarget, SameAnswersAsTheText) {
  const std::string long_user(max_value_bytes + 1, 'u');
  const std::vector<std::string> queries = {
      "Cmd=Sync&User=alice&DeviceId=ABC123&DeviceType=iPhone",
      "cmd=ping&USER=alice%40corp.example.test&deviceid=abc&devicetype=Android",
      "Cmd=Sync&User=DOMAIN%5Calice+smith&DeviceId=A&DeviceType=B",
      "C%6Dd=Sync&Device%49d=A&DeviceType=B",
      "Cmd+=Sync&DeviceId=A&DeviceType=B",
      "Cmd=Sync&&DeviceId=A&DeviceType=B&",
      "Cmd=Sync&cmd=Ping&DeviceId=A&DeviceType=B",
      "Cmd=Sync&DeviceId&DeviceType=B",
      "Cmd=Sync&Bogus=1&DeviceId=A&DeviceType=B",
      "Cmd=Sync&User=" + long_user + "&DeviceId=A&DeviceType=B",
      "Cmd=Sync&User=a%0Ab&DeviceId=A&DeviceType=B",
      "Cmd=Nope&DeviceId=A&DeviceType=B",
      "Cmd=Sync&DeviceType=B",
      "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l",
      "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob2",
      "",
  };
  for (const auto& query : queries) {
    for (std::string_view method : {"POST", "OPTIONS", "PUT"}) {
      std::string line = "/Microsoft-Server-ActiveSync?" + query + " HTTP/1.1\r\n";
      auto target = boost::urls::parse_origin_form(std::string_view(line).substr(0, line.find(' ')));
      ASSERT_TRUE(target.has_value()) << query;
      auto from_target = parse_query(method, target->encoded_params());
      auto from_text = parse_query(method, query);
      ASSERT_EQ(from_target.has_value(), from_text.has_value()) << method << " " << query;
      if (from_text)
        EXPECT_EQ(*from_target, *from_text) << method << " " << query;
      else
        EXPECT_EQ(from_target.error().code, from_text.error().code) << method << " " << query;
    }
  }
}

}  // namespace
}  // namespace easedge::eas
