// The body easedge relays, framed the way its own head (OutgoingHead) announced it: a chunked body as chunks
// easedge counts itself (a zero-size chunk only as the end, never for a read that brought nothing), any
// other body as it came.
#pragma once

#include <boost/asio/buffer.hpp>

#include <array>
#include <charconv>
#include <cstddef>
#include <string_view>

namespace easedge::proxy {

class OutgoingBody {
public:
  // One write: the head (when it has not gone yet), a piece of body, and the end of the body when it is last.
  using Buffers = std::array<boost::asio::const_buffer, 4>;

  explicit OutgoingBody(bool chunked = false) : chunked_(chunked) {}

  // The buffers refer to `head`, `data` and this object: all must stay as they are until the write completes.
  Buffers frame(std::string_view head, const char* data, std::size_t size, bool last) {
    static constexpr std::string_view chunk_end = "\r\n";
    static constexpr std::string_view chunk_end_and_last = "\r\n0\r\n\r\n";
    static constexpr std::string_view last_chunk = "0\r\n\r\n";
    Buffers out{boost::asio::buffer(head.data(), head.size())};
    if (!chunked_) {
      out[1] = boost::asio::buffer(data, size);
      return out;
    }
    if (size == 0) {
      if (last) out[1] = boost::asio::buffer(last_chunk.data(), last_chunk.size());
      return out;
    }
    auto* end = std::to_chars(size_line_.data(), size_line_.data() + size_line_.size() - 2, size, 16).ptr;
    *end++ = '\r';
    *end++ = '\n';
    out[1] = boost::asio::buffer(size_line_.data(), static_cast<std::size_t>(end - size_line_.data()));
    out[2] = boost::asio::buffer(data, size);
    auto tail = last ? chunk_end_and_last : chunk_end;
    out[3] = boost::asio::buffer(tail.data(), tail.size());
    return out;
  }

private:
  bool chunked_;
  std::array<char, sizeof(std::size_t) * 2 + 2> size_line_{};  // hex digits and CRLF
};

}  // namespace easedge::proxy
