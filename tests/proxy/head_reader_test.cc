// parse_head_step: the byte limit holds for the whole head however it arrives, and a head within it parses
// whatever the piece sizes; end_of_stream_in_head: a close before any byte is no request; parse_buffered_body
// takes what is buffered and says when a read is still needed.
#include "proxy/head_reader.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace easedge::proxy {
namespace {

namespace http = boost::beast::http;

std::string head_of(std::size_t fields, std::size_t value_bytes) {
  std::string head = "POST /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: h\r\n";
  for (std::size_t i = 0; i < fields; ++i)
    head += "X-Pad-" + std::to_string(i) + ": " + std::string(value_bytes, 'p') + "\r\n";
  return head + "\r\n";
}

// Delivers `text` in pieces of `piece` bytes, as reads from a socket would; returns the last step's answer.
boost::beast::error_code feed(const std::string& text, std::size_t piece, std::size_t limit) {
  http::request_parser<http::empty_body> parser;
  ReadBuffer buffer;
  std::size_t head_bytes = 0;
  boost::beast::error_code ec = http::error::need_more;
  for (std::size_t at = 0; at < text.size() && ec == http::error::need_more; at += piece) {
    auto chunk = text.substr(at, piece);
    buffer.commit(boost::asio::buffer_copy(buffer.prepare(chunk.size()), boost::asio::buffer(chunk)));
    ec = parse_head_step(parser, buffer, limit, head_bytes);
  }
  return ec;
}

TEST(ParseHeadStep, SmallFieldsInPiecesCannotExceedTheLimit) {
  auto head = head_of(600, 40);  // ~32 KB of small fields: passed a 16 KB limit with Beast's own reads
  for (std::size_t piece : {1u, 7u, 100u, 1000u, 4096u, 16384u, 65536u})
    EXPECT_EQ(feed(head, piece, 16384), http::error::header_limit) << "pieces of " << piece;
}

TEST(ParseHeadStep, BigFieldsOverTheLimitAreRefused) {
  auto head = head_of(90, 200);  // 18 KB in fields larger than the limit left near the end
  for (std::size_t piece : {1u, 13u, 4096u, 16384u, 65536u})
    EXPECT_EQ(feed(head, piece, 16384), http::error::header_limit) << "pieces of " << piece;
}

TEST(ParseHeadStep, AHeadWithinTheLimitParsesInAnyPieces) {
  auto head = head_of(60, 200);  // ~14 KB
  for (std::size_t piece : {1u, 13u, 4096u, 65536u})
    EXPECT_FALSE(feed(head, piece, 16384)) << "pieces of " << piece;
}

// The peer closing before a head: an idle keep-alive connection ending is not an (empty) request.
TEST(EndOfStreamInHead, NothingReceivedIsTheEndOfTheStream) {
  http::request_parser<http::empty_body> request;
  EXPECT_EQ(end_of_stream_in_head(request), http::error::end_of_stream);
  EXPECT_FALSE(request.is_header_done());
  http::response_parser<http::empty_body> response;
  EXPECT_EQ(end_of_stream_in_head(response), http::error::end_of_stream);
}

TEST(EndOfStreamInHead, APartHeadIsAPartialMessage) {
  http::request_parser<http::empty_body> parser;
  ReadBuffer buffer;
  std::size_t head_bytes = 0;
  std::string part = "GET /Microsoft-Server-ActiveSync HTTP/1.1\r\nHo";
  buffer.commit(boost::asio::buffer_copy(buffer.prepare(part.size()), boost::asio::buffer(part)));
  ASSERT_EQ(parse_head_step(parser, buffer, 16384, head_bytes), http::error::need_more);
  EXPECT_EQ(end_of_stream_in_head(parser), http::error::partial_message);
}

// A parser whose head came from `message` and whose body buffer is `room`; `buffer` holds what follows the head.
struct BufferedBody {
  explicit BufferedBody(const std::string& message, std::size_t room = 64) : storage(room) {
    buffer.commit(boost::asio::buffer_copy(buffer.prepare(message.size()), boost::asio::buffer(message)));
    std::size_t head_bytes = 0;
    EXPECT_FALSE(parse_head_step(parser, buffer, 16384, head_bytes));
    parser.body_limit(100);
    parser.get().body().data = storage.data();
    parser.get().body().size = storage.size();
  }
  std::string body() { return std::string(storage.data(), storage.size() - parser.get().body().size); }

  http::request_parser<http::buffer_body> parser;
  ReadBuffer buffer;
  std::vector<char> storage;
};

TEST(ParseBufferedBody, AWholeBodyInTheBufferNeedsNoRead) {
  BufferedBody request("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloPOST");
  boost::beast::error_code ec;
  std::size_t bytes = 0;
  EXPECT_TRUE(parse_buffered_body(request.parser, request.buffer, ec, bytes));
  EXPECT_FALSE(ec);
  EXPECT_TRUE(request.parser.is_done());
  EXPECT_EQ(bytes, 5u);
  EXPECT_EQ(request.body(), "hello");
  EXPECT_EQ(request.buffer.size(), 4u);  // the next pipelined request stays for its own parse
}

TEST(ParseBufferedBody, APartialChunkTakesWhatIsThereAndAsksForARead) {
  BufferedBody request("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\nde");
  boost::beast::error_code ec;
  std::size_t bytes = 0;
  EXPECT_FALSE(parse_buffered_body(request.parser, request.buffer, ec, bytes));
  EXPECT_FALSE(ec);
  EXPECT_FALSE(request.parser.is_done());
  EXPECT_GT(bytes, 0u);
  EXPECT_EQ(request.body().substr(0, 3), "abc");
}

TEST(ParseBufferedBody, AFullBodyBufferAndTheUploadLimitEndTheStep) {
  BufferedBody full("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n12345678", 4);
  boost::beast::error_code ec;
  std::size_t bytes = 0;
  EXPECT_TRUE(parse_buffered_body(full.parser, full.buffer, ec, bytes));
  EXPECT_EQ(ec, http::error::need_buffer);
  EXPECT_EQ(full.body(), "1234");

  BufferedBody over("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n80\r\n" + std::string(128, 'x'));
  EXPECT_TRUE(parse_buffered_body(over.parser, over.buffer, ec, bytes));
  EXPECT_EQ(ec, http::error::body_limit);
}

TEST(ParseBufferedBody, AnEmptyBufferAsksForARead) {
  BufferedBody request("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n");
  boost::beast::error_code ec;
  std::size_t bytes = 0;
  EXPECT_FALSE(parse_buffered_body(request.parser, request.buffer, ec, bytes));
  EXPECT_FALSE(ec);
  EXPECT_EQ(bytes, 0u);
}

}  // namespace
}  // namespace easedge::proxy
