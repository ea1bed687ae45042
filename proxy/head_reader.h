// Feeds buffered bytes to a Beast parser: a head one step at a time, so a byte limit holds for the whole head
// (Beast's header_limit bounds one parse step, and its read operations loop over steps internally: a head of
// many small fields arriving in pieces passed a 16 KB limit at 32 KB); a body's buffered bytes without an
// asynchronous read.
#pragma once

#include "proxy/read_buffer.h"

#include <boost/beast/http/error.hpp>

#include <cstddef>
#include <cstdint>

namespace easedge::proxy {

// Parses what `buffer` holds into `parser` (eager off) and consumes it. `head_bytes` counts the head's bytes
// consumed so far, across calls. Returns need_more when the head needs more bytes, header_limit once the
// head (consumed and still buffered) reaches `limit`, another parser error, or success when the head is complete.
template <class Parser>
boost::beast::error_code parse_head_step(Parser& parser, ReadBuffer& buffer, std::size_t limit,
                                         std::size_t& head_bytes) {
  namespace http = boost::beast::http;
  boost::beast::error_code ec = http::error::need_more;
  while (buffer.size() > 0 && head_bytes < limit) {
    parser.header_limit(static_cast<std::uint32_t>(limit - head_bytes));
    auto used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    head_bytes += used;
    if (ec != http::error::need_more || used == 0) break;
  }
  // Bytes still buffered belong to the unfinished head too (Beast may wait for more without consuming them
  // once the limit left is smaller than the field it is reading).
  if (ec == http::error::need_more && head_bytes + buffer.size() >= limit) ec = http::error::header_limit;
  return ec;
}

// Parses the body bytes `buffer` already holds into `parser` as Beast's read would before reading more (eager),
// and consumes them; `bytes` counts them. True when no read is needed: the message is done, the parser's body
// buffer is full (need_buffer in `ec`), or the parser refused the bytes (its error in `ec`). A Sync's body
// usually arrives with its head: taking it here spares an asynchronous read that completes at once, which
// Asio would post (a scheduler round and a reactor poll).
template <class Parser>
bool parse_buffered_body(Parser& parser, ReadBuffer& buffer, boost::beast::error_code& ec,
                         std::size_t& bytes) {
  namespace http = boost::beast::http;
  parser.eager(true);
  ec = {};
  bytes = 0;
  while (!parser.is_done() && buffer.size() > 0) {
    auto used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    bytes += used;
    if (ec == http::error::need_more || (!ec && used == 0)) {
      ec = {};
      return false;
    }
    if (ec) return true;
  }
  return parser.is_done();
}

// What the peer closing its side means while a head is awaited: end_of_stream before the first byte (an idle
// keep-alive connection ended), partial_message after it. Beast's put_eof must not see a parser that got
// nothing: it would mark the empty message complete and an empty request would be processed.
template <class Parser>
boost::beast::error_code end_of_stream_in_head(Parser& parser) {
  if (!parser.got_some()) return boost::beast::http::error::end_of_stream;
  boost::beast::error_code ec;
  parser.put_eof(ec);
  return ec;
}

}  // namespace easedge::proxy
