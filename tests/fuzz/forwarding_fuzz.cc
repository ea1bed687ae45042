// Differential libFuzzer target for what easedge forwards: arbitrary request bytes go through easedge's
// parse (Beast + check_request_shape), head writing (write_forwarded_request) and body framing (OutgoingBody);
// the output must re-parse, by the independent strict parser below, to exactly one request with the input's
// body, one Host, one X-Forwarded-User (easedge's), and no header a device may not send.
#include "proxy/forwarded_headers.h"
#include "proxy/message_framing.h"
#include "proxy/outgoing_body.h"
#include "proxy/request_shape.h"

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace http = boost::beast::http;
using namespace easedge::proxy;

[[noreturn]] void violation() { std::abort(); }

constexpr const char* forwarded_user = "alice@corp.example.test";
constexpr std::size_t header_limit = 16384;
constexpr std::size_t body_limit = 1 << 20;
constexpr std::size_t max_fields = 100;


struct StrictRequest {
  std::vector<std::pair<std::string, std::string>> fields;  // canonical name, value
  std::string body;
  std::size_t consumed = 0;
};

bool is_tchar(char c) {
  auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 9112 with no tolerance: CRLF only, no obs-fold, no space before ':', framing exactly one way.
std::optional<StrictRequest> strict_parse(std::string_view in) {
  StrictRequest out;
  auto head_end = in.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return std::nullopt;
  auto head = in.substr(0, head_end + 2);
  auto line_end = head.find("\r\n");
  auto start_line = head.substr(0, line_end);
  if (std::count(start_line.begin(), start_line.end(), ' ') != 2 || !start_line.ends_with(" HTTP/1.1"))
    return std::nullopt;
  for (auto pos = line_end + 2; pos < head.size();) {
    auto end = head.find("\r\n", pos);
    auto line = head.substr(pos, end - pos);
    pos = end + 2;
    auto colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
    auto name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_tchar)) return std::nullopt;
    auto value = line.substr(colon + 1);
    if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; }))
      return std::nullopt;
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    out.fields.emplace_back(canonical_header_name(name), std::string(value));
  }
  auto count = [&](std::string_view name) {
    return std::count_if(out.fields.begin(), out.fields.end(), [&](const auto& f) { return f.first == name; });
  };
  auto value_of = [&](std::string_view name) {
    return std::find_if(out.fields.begin(), out.fields.end(), [&](const auto& f) { return f.first == name; })->second;
  };
  auto rest = in.substr(head_end + 4);
  auto te = count("transfer-encoding");
  auto cl = count("content-length");
  if (te + cl > 1) return std::nullopt;
  if (cl == 1) {
    auto text = value_of("content-length");
    if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    auto length = std::stoull(text);
    if (length > rest.size()) return std::nullopt;
    out.body = std::string(rest.substr(0, length));
    rest.remove_prefix(length);
  } else if (te == 1) {
    if (value_of("transfer-encoding") != "chunked") return std::nullopt;
    for (;;) {
      auto size_end = rest.find("\r\n");
      if (size_end == std::string_view::npos || size_end == 0) return std::nullopt;
      auto size_text = rest.substr(0, size_end);
      if (!std::all_of(size_text.begin(), size_text.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }) ||
          size_text.size() > 8)
        return std::nullopt;
      auto size = std::stoull(std::string(size_text), nullptr, 16);
      rest.remove_prefix(size_end + 2);
      if (size == 0) {
        if (!rest.starts_with("\r\n")) return std::nullopt;  // a trailer section: never expected
        rest.remove_prefix(2);
        break;
      }
      if (rest.size() < size + 2 || rest.substr(size, 2) != "\r\n") return std::nullopt;
      out.body.append(rest.substr(0, size));
      rest.remove_prefix(size + 2);
    }
  }
  out.consumed = in.size() - rest.size();
  return out;
}

// Writes `head` and `body` the way the relay does: the head with the first piece, the body in pieces of
// `piece_bytes`, an empty piece (a read that brought no body bytes) before the end, the end on its own.
std::string serialize(const OutgoingHead& head, const std::string& body, std::size_t piece_bytes) {
  OutgoingBody framer(head.chunked);
  std::string wire;
  std::string_view unsent_head = head.bytes;
  auto write = [&](const char* data, std::size_t size, bool last) {
    for (const auto& buffer : framer.frame(unsent_head, data, size, last))
      wire.append(static_cast<const char*>(buffer.data()), buffer.size());
    unsent_head = {};
  };
  for (std::size_t at = 0; at < body.size(); at += piece_bytes)
    write(body.data() + at, std::min(piece_bytes, body.size() - at), false);
  write(body.data(), 0, false);
  write(nullptr, 0, true);
  return wire;
}

// Easedge's side: nullopt when easedge refuses the request (nothing forwarded).
std::optional<std::string> forward(std::string_view input, std::string& body) {
  std::size_t piece_bytes = input.empty() ? 1 : static_cast<unsigned char>(input.back()) % 64 + 1;
  // As easedge parses: the head in an arena, going on in the heap when it outgrows it.
  ParserWithArena<RequestHeadParser<http::string_body>> parsed;
  auto& parser = parsed.parser;
  parser.header_limit(header_limit);
  parser.body_limit(body_limit);
  parser.eager(false);
  boost::beast::error_code ec;
  auto used = parser.put(boost::asio::buffer(input.data(), input.size()), ec);
  if (ec || !parser.is_header_done()) return std::nullopt;
  auto shape = check_request_shape(parser.get(), parser.chunked(), parser.content_length(), max_fields);
  if (shape.refusal) return std::nullopt;
  HeaderPolicy policy({"x-site-extra"});
  ForwardedIdentity identity{.user = forwarded_user, .forwarded_user = forwarded_user, .client_address = "192.0.2.1"};
  OutgoingHead head;
  write_forwarded_request(head, parser.get(), shape.framing, policy, identity, "00000000000000a1");
  // The body: everything after the head, parsed as the session would (eagerly, to its end).
  parser.eager(true);
  input.remove_prefix(used);
  while (!parser.is_done()) {
    if (input.empty()) return std::nullopt;  // incomplete: the session waits, then times out
    used = parser.put(boost::asio::buffer(input.data(), input.size()), ec);
    if (ec == http::error::need_more && used == 0) return std::nullopt;
    if (ec && ec != http::error::need_more) return std::nullopt;
    input.remove_prefix(used);
  }
  body = parser.get().body();
  return serialize(head, body, piece_bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body;
  auto wire = forward(std::string_view(reinterpret_cast<const char*>(data), size), body);
  if (!wire) return 0;
  auto parsed = strict_parse(*wire);
  if (!parsed || parsed->consumed != wire->size() || parsed->body != body) violation();
  std::size_t hosts = 0;
  std::size_t users = 0;
  HeaderPolicy policy({"x-site-extra"});
  for (const auto& [name, value] : parsed->fields) {
    if (name == "host") ++hosts;
    if (name == "x-forwarded-user") {
      ++users;
      if (value != forwarded_user) violation();
      continue;
    }
    bool ours = name == "x-forwarded-for" || name == "x-forwarded-proto" || name == "content-length" ||
                name == "transfer-encoding" || name == "host" || name == "x-request-id";
    if (!ours && policy.strips_request_header(name)) violation();
  }
  if (hosts != 1 || users != 1) violation();
  return 0;
}
