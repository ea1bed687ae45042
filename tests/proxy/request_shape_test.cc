// check_request_shape, table-driven: targets, methods, Expect and the field count, as a device could send them.
#include "proxy/request_shape.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <gtest/gtest.h>

#include <tuple>

namespace easedge::proxy {
namespace {

struct Case {
  const char* name;
  std::string start_line;
  std::string fields;
  std::optional<Refusal> refusal;  // nullopt: admitted
};

std::ostream& operator<<(std::ostream& out, const Case& c) { return out << c.name; }

RequestShape shape_of(const std::string& start_line, const std::string& fields, std::size_t max_fields = 100) {
  std::string text = start_line + "\r\nHost: mail.example.test\r\n" + fields + "\r\n";
  RequestHeadParser<http::empty_body> parser;
  parser.eager(false);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(text), ec);
  EXPECT_FALSE(ec) << ec.message() << " parsing " << text;
  return check_request_shape(parser.get(), parser.chunked(), parser.content_length(), max_fields);
}

class RequestShapeTable : public ::testing::TestWithParam<Case> {};

TEST_P(RequestShapeTable, AdmitsOrRefusesWithTheRightClass) {
  const auto& c = GetParam();
  auto shape = shape_of(c.start_line, c.fields);
  EXPECT_EQ(shape.refusal, c.refusal) << shape.detail;
  if (c.refusal) {
    EXPECT_FALSE(shape.detail.empty());
  }
}

const std::string post = "POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=D1&DeviceType=iPhone HTTP/1.1";

INSTANTIATE_TEST_SUITE_P(
    Targets, RequestShapeTable,
    ::testing::Values(
        Case{"sync", post, "Content-Length: 3\r\n", std::nullopt},
        Case{"options", "OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1", "", std::nullopt},
        Case{"get_subpath", "GET /Microsoft-Server-ActiveSync/Proxy HTTP/1.1", "", std::nullopt},
        Case{"any_case_path", "POST /microsoft-server-activesync?Cmd=Ping HTTP/1.1", "", std::nullopt},
        Case{"other_path", "POST /ecp/ HTTP/1.1", "", Refusal::not_found},
        Case{"prefix_lookalike", "POST /Microsoft-Server-ActiveSyncX HTTP/1.1", "", Refusal::not_found},
        Case{"asterisk", "OPTIONS * HTTP/1.1", "", Refusal::not_found},
        Case{"absolute_form", "POST http://mail/Microsoft-Server-ActiveSync HTTP/1.1", "", Refusal::bad_request},
        Case{"dot_dot", "POST /Microsoft-Server-ActiveSync/../ecp/ HTTP/1.1", "", Refusal::bad_request},
        Case{"dot", "POST /Microsoft-Server-ActiveSync/./x HTTP/1.1", "", Refusal::bad_request},
        Case{"encoded_dot_dot", "POST /Microsoft-Server-ActiveSync/%2e%2e/ecp HTTP/1.1", "", Refusal::bad_request},
        Case{"encoded_slash", "POST /Microsoft-Server-ActiveSync%2f..%2fecp HTTP/1.1", "", Refusal::bad_request},
        Case{"encoded_backslash", "POST /Microsoft-Server-ActiveSync/%5c..%5cecp HTTP/1.1", "", Refusal::bad_request},
        Case{"put", "PUT /Microsoft-Server-ActiveSync HTTP/1.1", "", Refusal::method_not_allowed},
        Case{"head", "HEAD /Microsoft-Server-ActiveSync HTTP/1.1", "", Refusal::method_not_allowed},
        Case{"unknown_method", "BREW /Microsoft-Server-ActiveSync HTTP/1.1", "", Refusal::method_not_allowed},
        Case{"expect_continue", post, "Expect: 100-continue\r\nContent-Length: 3\r\n", std::nullopt},
        Case{"expect_other", post, "Expect: 200-ok\r\nContent-Length: 3\r\n", Refusal::bad_request},
        Case{"ambiguous_framing_first", "POST /ecp/ HTTP/1.1", "Connection: Content-Length\r\nContent-Length: 3\r\n",
             Refusal::bad_request}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(RequestShape, ReportsFramingAndExpectContinue) {
  auto shape = shape_of(post, "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n");
  ASSERT_FALSE(shape.refusal) << shape.detail;
  EXPECT_EQ(shape.framing.kind, BodyFraming::chunked);
  EXPECT_TRUE(shape.expect_continue);
}

TEST(RequestShape, FieldCountOverTheLimitIs431) {
  std::string fields;
  for (int i = 0; i < 20; ++i) fields += "X-F" + std::to_string(i) + ": 1\r\n";
  EXPECT_EQ(shape_of(post, fields, 20).refusal, Refusal::header_too_large);  // 20 + Host
  EXPECT_FALSE(shape_of(post, fields, 21).refusal);
}

// The query eas::parse_query reads is the one this parse of the target validated: a view into the head.
TEST(RequestShape, HandsOverTheTargetsQuery) {
  for (auto [target, query, count] : {std::tuple{"/Microsoft-Server-ActiveSync?Cmd=Sync&User=a%40b", "Cmd=Sync&User=a%40b", 2},
                                      std::tuple{"/Microsoft-Server-ActiveSync?", "", 1},
                                      std::tuple{"/Microsoft-Server-ActiveSync", "", 0}}) {
    std::string text = std::string("POST ") + target + " HTTP/1.1\r\nHost: h\r\n\r\n";
    RequestHeadParser<http::empty_body> parser;
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(text), ec);
    ASSERT_FALSE(ec) << ec.message();
    auto shape = check_request_shape(parser.get(), parser.chunked(), parser.content_length(), 100);
    ASSERT_FALSE(shape.refusal) << shape.detail;
    EXPECT_EQ(std::string_view(shape.query.buffer()), query) << target;
    EXPECT_EQ(shape.query.size(), static_cast<std::size_t>(count)) << target;
    if (auto question = parser.get().target().find('?'); question != std::string_view::npos) {
      EXPECT_EQ(shape.query.buffer().data(), parser.get().target().data() + question + 1) << "not a view into the head";
    }
  }
}

}  // namespace
}  // namespace easedge::proxy
