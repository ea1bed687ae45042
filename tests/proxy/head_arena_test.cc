// proxy/head_arena.h: a parsed head lives in its arena while it fits, goes on in the heap when it does not,
// and nothing outside the parser's own message ever points into the arena.
#include "proxy/head_arena.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

namespace easedge::proxy {
namespace {

using ParsedHead = ParserWithArena<RequestHeadParser<http::empty_body>>;

std::unique_ptr<ParsedHead> parse(const std::string& head) {
  auto parsed = std::make_unique<ParsedHead>();
  boost::beast::error_code ec;
  parsed->parser.put(boost::asio::buffer(head), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(parsed->parser.is_header_done());
  return parsed;
}

std::string head_with_fields(int count, std::size_t value_bytes) {
  std::string head = "POST /Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=ABC123&DeviceType=iPhone HTTP/1.1\r\n";
  for (int i = 0; i < count; ++i)
    head += "X-Field-" + std::to_string(i) + ": " + std::string(value_bytes, 'a' + i % 26) + "\r\n";
  return head + "\r\n";
}

TEST(HeadArenaTest, AnActiveSyncHeadLivesInTheArena) {
  auto parsed = parse(
      "POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=ABC123&DeviceType=iPhone HTTP/1.1\r\n"
      "Host: mail.corp.example.test\r\nUser-Agent: Apple-iPhone9C1/1602.92\r\n"
      "Content-Type: application/vnd.ms-sync.wbxml\r\nMS-ASProtocolVersion: 16.1\r\nX-MS-PolicyKey: 1234567890\r\n"
      "Accept: */*\r\nAccept-Language: en-us\r\nContent-Length: 0\r\n\r\n");
  const auto& head = parsed->parser.get();
  EXPECT_TRUE(parsed->head_arena.owns(head.target().data()));
  int fields = 0;
  for (const auto& field : head) {
    EXPECT_TRUE(parsed->head_arena.owns(field.value().data())) << field.name_string();
    ++fields;
  }
  EXPECT_EQ(fields, 8);
  EXPECT_EQ(head[http::field::user_agent], "Apple-iPhone9C1/1602.92");
}

// Sixty 100-byte fields are several times the arena: the first fields are in it, the rest in the heap, and
// every value reads back whole (under ASan, the heap part is freed with the parser).
TEST(HeadArenaTest, AHeadThatOutgrowsTheArenaGoesOnInTheHeap) {
  auto parsed = parse(head_with_fields(60, 100));
  const auto& head = parsed->parser.get();
  int fields = 0, in_arena = 0;
  for (const auto& field : head) {
    EXPECT_EQ(field.value(), std::string(100, 'a' + fields % 26));
    in_arena += parsed->head_arena.owns(field.value().data()) ? 1 : 0;
    ++fields;
  }
  EXPECT_EQ(fields, 60);
  EXPECT_GT(in_arena, 0);
  EXPECT_LT(in_arena, 60);
}

// A copy of a parsed head keeps to the heap, so it outlives the parser and its arena.
TEST(HeadArenaTest, ACopyOfTheHeadOutlivesTheArena) {
  auto parsed = parse(head_with_fields(5, 20));
  RequestHead copy = parsed->parser.get().base();
  parsed.reset();
  EXPECT_EQ(copy.target(), "/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=ABC123&DeviceType=iPhone");
  EXPECT_EQ(copy["X-Field-4"], std::string(20, 'e'));
}

TEST(HeadArenaTest, AllocationsAreAlignedAndNeverOverlap) {
  HeadArena arena;
  auto* one = static_cast<char*>(arena.allocate(3, 1));
  auto* two = static_cast<char*>(arena.allocate(8, 8));
  ASSERT_NE(one, nullptr);
  ASSERT_NE(two, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(two) % 8, 0u);
  EXPECT_GE(two, one + 3);
  EXPECT_EQ(arena.allocate(HeadArena::capacity, 1), nullptr);  // what is left is smaller
  EXPECT_FALSE(arena.owns(&arena + 1));
}

}  // namespace
}  // namespace easedge::proxy
