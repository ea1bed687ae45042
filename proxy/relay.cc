// The relay's steps, each a do_x / on_x pair like the connection's; the connection's one timer guards them
// (the host arms it with the phase), and a handler holds the connection's ownership through self(). Here: the
// upload limit, both bodies, the held-Ping watch; the upstream server and its failures are relay_upstream.cc.
#include "proxy/relay.h"

#include "proxy/coarse_clock.h"
#include "proxy/head_reader.h"

#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <spdlog/spdlog.h>

#include <utility>

namespace easedge::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// How long Exchange may take to answer before easedge starts watching the device's socket (to release a held
// Ping's upstream connection when the device goes away). Not a limit: it only trades a wait per request
// against noticing a departed device a second later.
constexpr auto held_request_watch_delay = std::chrono::seconds(1);

// Reads the next piece of a body into the parser's body buffer: from what `buffer` already holds when that is
// enough (`handler` runs at once), else through Beast's read. `handler` gets the body bytes of both parts.
template <class Stream, class Parser, class Handler>
void read_body_piece(Stream& stream, ReadBuffer& buffer, Parser& parser, Handler handler) {
  error_code ec;
  std::size_t buffered = 0;
  if (parse_buffered_body(parser, buffer, ec, buffered)) return handler(ec, buffered);
  http::async_read(stream, buffer, parser, [handler = std::move(handler), buffered](error_code ec, std::size_t bytes) {
    handler(ec, buffered + bytes);
  });
}

// A message Beast's parser refused (as opposed to a connection that ended or failed).
bool is_malformed_message(error_code ec) {
  return ec.category() == make_error_code(http::error::bad_version).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

}  // namespace

void limit_upload(RequestParser& parser, const config::LimitsConfig& limits) {
  parser.body_limit(limits.upload_read_ahead_bytes);
}

std::string upload_refusal_detail(const RequestParser& parser, const config::LimitsConfig& limits) {
  auto limit = std::to_string(limits.upload_read_ahead_bytes);
  if (parser.chunked()) return "chunked body exceeds limits.upload_read_ahead_bytes " + limit;
  return "Content-Length " + std::to_string(parser.content_length().value_or(0)) +
         " exceeds limits.upload_read_ahead_bytes " + limit;
}

Relay::Relay(RelayHost& host, ThreadContext& context, const std::shared_ptr<const Runtime>& runtime,
             auth::TlsStream& client, ReadBuffer& client_buffer)
    : host_(host), context_(context), runtime_(runtime), client_(client), client_buffer_(client_buffer) {
  // A ceiling on what may wait unparsed (see the connection's client buffer).
  upstream_buffer_.max_size(runtime_->config.limits.max_response_header_bytes + read_chunk_bytes);
}

Relay::~Relay() {
  release_server();
  if (held_) context_.shared.metrics().requests_held.dec();
}

std::shared_ptr<Relay> Relay::self() { return std::shared_ptr<Relay>(host_.owner(), this); }

void Relay::forward(RequestParser& request, AdmissionOutcome& verdict) {
  request_ = &request;
  verdict_ = &verdict;
  request_body_started_ = false;
  response_started_ = false;
  servers_tried_ = 0;
  // Bytes an upstream sent past its last answer belong to that connection, which was closed: never an answer.
  upstream_buffer_.clear();
  choose_upstream();
}

// ---- forwarding the request ------------------------------------------------------------------------------

void Relay::start_upstream_request() {
  // Built for each connection the request goes out on: a retry on another server carries that server's
  // Kerberos token, and a replay after a held request parked has to build it again (parking gave it back).
  write_forwarded_request(forwarded_, request_->get(), verdict_->framing, runtime_->header_policy, verdict_->identity,
                          host_.request_id());
  // The head goes out together with the first body bytes (one TLS record, one write): read before writing.
  forwarded_body_ = OutgoingBody(forwarded_.chunked);
  forwarded_head_sent_ = false;
  early_read_ = EarlyRead::none;
  if (upstream_reused_) return send_after_liveness_read();
  send_request();
}

void Relay::send_request() {
  if (request_->is_done()) return do_write_upstream(nullptr, 0, true);
  if (verdict_->expect_continue) return do_send_continue();
  do_read_request_body();
}

void Relay::do_send_continue() {
  // The request passed every check: now the device may send its body (Expect: 100-continue).
  static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
  verdict_->expect_continue = false;
  net::async_write(client_, net::buffer(continue_line.data(), continue_line.size()),
                   [self = self()](error_code ec, std::size_t) {
                     if (ec) return self->host_.close();
                     self->do_read_request_body();
                   });
}

void Relay::do_read_request_body() {
  request_body_started_ = true;
  auto& body = request_->get().body();
  body.data = buffer();
  body.size = runtime_->config.limits.relay_buffer_bytes;
  host_.arm(runtime_->config.timeouts.client_body, Phase::request_body);
  read_body_piece(client_, client_buffer_, *request_, [self = self()](error_code ec, std::size_t bytes) {
    self->on_read_request_body(ec, bytes);
  });
}

void Relay::on_read_request_body(error_code ec, std::size_t bytes) {
  if (ec == http::error::need_buffer) ec = {};
  auto& body = request_->get().body();
  std::size_t got = runtime_->config.limits.relay_buffer_bytes - body.size;
  host_.record().bytes_in += bytes;
  if (ec == http::error::body_limit)  // part of the body already went upstream: that connection is spoiled
    return refuse_dropping_upstream(Refusal::body_too_large, upload_refusal_detail(*request_, runtime_->config.limits));
  if (ec) {
    if (upstream_) upstream_->close();
    upstream_.reset();
    if (host_.timed_out()) return host_.refuse(Refusal::request_timeout, "request body stalled");
    if (ec == net::error::eof || ec == http::error::partial_message || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted || host_.closed()) {
      spdlog::info("{}: device closed the connection mid-body after {} bytes", host_.client_address(),
                   host_.record().bytes_in);
      return host_.close();
    }
    return host_.refuse(Refusal::bad_request, "malformed request body: " + ec.message());
  }
  do_write_upstream(buffer_.get(), got, request_->is_done());
}

void Relay::do_write_upstream(const char* data, std::size_t size, bool last) {
  std::string_view head = forwarded_head_sent_ ? std::string_view() : std::string_view(forwarded_.bytes);
  forwarded_head_sent_ = true;
  host_.arm(runtime_->config.timeouts.client_body, Phase::request_body);
  net::async_write(*upstream_, forwarded_body_.frame(head, data, size, last),
                   [self = self(), last](error_code ec, std::size_t) { self->on_write_upstream(ec, last); });
}

void Relay::on_write_upstream(error_code ec, bool last) {
  if (ec) return upstream_failed(ec, "sending the request body");
  if (last) return do_wait_response();
  do_read_request_body();
}

// ---- relaying the response -------------------------------------------------------------------------------

void Relay::do_wait_response() {
  release_buffer();
  if (client_buffer_.size() == 0) client_buffer_.shrink_to_fit();
  upstream_sent_ = std::chrono::steady_clock::now();
  if (!held_) context_.shared.metrics().requests_held.inc();
  held_ = true;
  // Most answers come within milliseconds: the answer is read at once (a readiness wait first would cost an
  // epoll_ctl per request), and only a request Exchange still holds at the deadline parks without a read
  // buffer and has the device's socket watched.
  watch_client_due_ = verdict_->upstream_timeout > held_request_watch_delay;
  host_.arm(watch_client_due_ ? held_request_watch_delay : verdict_->upstream_timeout, Phase::upstream_response);
  switch (std::exchange(early_read_, EarlyRead::none)) {
    case EarlyRead::pending: return;  // the reused connection's liveness read goes on as the answer's read
    case EarlyRead::completed: return on_response_head_bytes(early_read_result_);
    default: return do_read_response_header();
  }
}

// A held Ping waits here for up to an hour: with no read buffer, response parser or forwarded head (all are
// made again when Exchange answers, or when the request is replayed on a fresh connection).
void Relay::park_response_wait() {
  upstream_buffer_.shrink_to_fit();
  response_.reset();
  forwarded_.bytes = std::string();
  upstream_->async_wait_readable([self = self()](error_code ec) { self->on_response_readable(ec); });
}

// While Exchange holds a Ping, notice a device that goes away (network change, sleep) so its upstream
// connection is released now instead of when Exchange answers up to an hour later.
void Relay::watch_client() {
  watching_client_ = true;
  client_.socket().async_wait(tcp::socket::wait_read,
                              [self = self()](error_code ec) { self->on_client_activity(ec); });
}

void Relay::on_client_activity(error_code ec) {
  if (!watching_client_ || ec || host_.closed()) return;
  watching_client_ = false;
  switch (client_.peek_peer()) {
    case auth::TlsStream::PeerState::sent_data: return;  // a pipelined request: it is read after this response
    case auth::TlsStream::PeerState::partial_record: return watch_client();
    case auth::TlsStream::PeerState::busy: return;       // still there, busy with TLS housekeeping
    case auth::TlsStream::PeerState::gone: break;
  }
  spdlog::debug("{}: device left while its request was held upstream", host_.client_address());
  host_.record().detail = "device closed the connection while the request was held upstream";
  host_.close();
}

void Relay::stop_watching_client() {
  watch_client_due_ = false;
  if (!watching_client_) return;
  watching_client_ = false;
  client_.cancel();
}

void Relay::on_response_readable(error_code ec) {
  if (ec) return upstream_failed(ec, "waiting for the response");
  do_read_response_header();
}

void Relay::do_read_response_header() {
  response_ = std::make_unique<ResponseParser>();
  response_->parser.header_limit(runtime_->config.limits.max_response_header_bytes);
  response_->parser.body_limit(boost::none);
  head_bytes_ = 0;
  upstream_buffer_.reserve(read_chunk_bytes);
  continue_read_response_header();
}

// A step at a time for the same reason as the request head: the limit holds for the whole head.
void Relay::continue_read_response_header() {
  auto ec = parse_head_step(response_->parser, upstream_buffer_, runtime_->config.limits.max_response_header_bytes,
                            head_bytes_);
  if (ec != http::error::need_more) return on_read_response_header(ec);
  auto room = std::min(upstream_buffer_.max_size() - upstream_buffer_.size(), read_chunk_bytes);
  if (room == 0) return on_read_response_header(http::error::buffer_overflow);
  upstream_->async_read_some(upstream_buffer_.prepare(room), [self = self()](error_code ec, std::size_t bytes) {
    self->upstream_buffer_.commit(bytes);
    switch (self->early_read_) {
      case EarlyRead::checking: return self->on_reused_connection_unusable(ec);
      case EarlyRead::pending:  // the answer came before the request was out: do_wait_response resumes here
        self->early_read_ = EarlyRead::completed;
        self->early_read_result_ = ec;
        return;
      default: return self->on_response_head_bytes(ec);
    }
  });
}

void Relay::on_response_head_bytes(error_code ec) {
  bool parking = std::exchange(parking_, false);  // a read that completed before the cancel is not parked
  if (!ec) return continue_read_response_header();
  if (ec == net::error::operation_aborted && parking) return park_response_wait();
  if (ec == net::error::eof) ec = end_of_stream_in_head(response_->parser);
  on_read_response_header(ec);
}

void Relay::on_read_response_header(error_code ec) {
  stop_watching_client();
  if (ec) {
    // A reused keep-alive connection the upstream had closed before the request reached it: replayed once on
    // a fresh connection when no body was consumed from the device and the kernel proves the server never
    // took a byte of it (issue 17: never a request the server may have processed).
    if (upstream_reused_ && !request_body_started_ && !host_.timed_out() && upstream_buffer_.size() == 0 &&
        head_bytes_ == 0 && never_reached_server(*upstream_, reused_mark_)) {
      upstream_->close();
      return do_connect_upstream();
    }
    if (is_malformed_message(ec)) {
      return refuse_dropping_upstream(Refusal::upstream_bad_response, "malformed response head: " + ec.message());
    }
    return upstream_failed(ec, "reading the response header");
  }
  auto& response = response_->parser.get();
  if (response.result_int() / 100 == 1) return do_read_response_header();  // interim 1xx: not for the device
  relay_response_header();
}

void Relay::relay_response_header() {
  auto& response = response_->parser.get();
  release_held();
  context_.metrics.upstream_latency(verdict_->eas.command).observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - upstream_sent_).count());
  host_.record().upstream_status = static_cast<std::uint16_t>(response.result_int());
  if (response.result() == http::status::unauthorized && upstream_server().kerberos) {
    // A fresh delegated token was refused: retrying would loop. Tell the operator, give the device a 502.
    spdlog::error("Exchange answered 401 to a fresh Kerberos token for {}: check that {} is the SPN Exchange "
                  "accepts and that Exchange has Kerberos (Negotiate) authentication enabled for ActiveSync",
                  verdict_->identity.user, upstream_server().config.service);
    upstream_server().kerberos->forget(verdict_->identity.user);  // a stale ticket must not keep failing until it expires
    return refuse_dropping_upstream(Refusal::upstream_rejected_identity,
                                    "Exchange answered 401 to a fresh Kerberos token");
  }
  // The device gets easedge's framing of what easedge read, never the upstream's head: a response Exchange
  // (or anything posing as it) frames ambiguously is a 502, not a second response smuggled to the device.
  auto framing = response_framing(response, response.result_int());
  if (framing && !parser_agrees(*framing, response_->parser.chunked(), response_->parser.content_length()))
    framing = ambiguous("the parser reads the body length differently");
  if (!framing) {
    spdlog::warn("{}: upstream {} sent an ambiguously framed response: {}", host_.client_address(),
                 upstream_url(), framing.error());
    return refuse_dropping_upstream(Refusal::upstream_bad_response, "ambiguous response framing: " + framing.error());
  }
  host_.record().status = host_.record().upstream_status;
  write_device_response(device_response_, response, *framing, request_->get().version(), host_.device_keeps_alive());
  device_body_ = OutgoingBody(device_response_.chunked);
  response_started_ = true;
  device_head_sent_ = false;
  // Head and first body bytes go to the device in one write.
  if (response_->parser.is_done()) return do_write_response(nullptr, 0, true);
  do_read_response_body();
}

void Relay::do_read_response_body() {
  auto& body = response_->parser.get().body();
  body.data = buffer();
  body.size = runtime_->config.limits.relay_buffer_bytes;
  host_.arm(runtime_->config.timeouts.upstream_response, Phase::response_body);
  read_body_piece(*upstream_, upstream_buffer_, response_->parser, [self = self()](error_code ec, std::size_t bytes) {
    self->on_read_response_body(ec, bytes);
  });
}

void Relay::on_read_response_body(error_code ec, std::size_t) {
  if (ec == http::error::need_buffer) ec = {};
  if (ec && !device_head_sent_) {
    response_started_ = false;  // nothing reached the device yet: it can still get a clean 502
    if (is_malformed_message(ec)) {
      return refuse_dropping_upstream(Refusal::upstream_bad_response, "malformed response body: " + ec.message());
    }
    return upstream_failed(ec, "reading the response body");
  }
  if (ec) {
    // The header already went to the device: all that is left is to cut the connection so it notices.
    spdlog::warn("{}: upstream response body broke off: {}", host_.client_address(), ec.message());
    host_.record().detail = "upstream response body broke off: " + ec.message();
    return host_.end_exchange(false);
  }
  auto got = runtime_->config.limits.relay_buffer_bytes - response_->parser.get().body().size;
  do_write_response(buffer_.get(), got, response_->parser.is_done());
}

void Relay::do_write_response(const char* data, std::size_t size, bool last) {
  std::string_view head = device_head_sent_ ? std::string_view() : std::string_view(device_response_.bytes);
  device_head_sent_ = true;
  host_.arm(runtime_->config.timeouts.client_write, Phase::response_body);
  net::async_write(client_, device_body_.frame(head, data, size, last),
                   [self = self(), last](error_code ec, std::size_t bytes) { self->on_write_response(ec, bytes, last); });
}

void Relay::on_write_response(error_code ec, std::size_t bytes, bool last) {
  host_.record().bytes_out += bytes;
  if (ec) return host_.close();
  if (last) return finish_exchange();
  do_read_response_body();
}

void Relay::finish_exchange() {
  const auto& response = response_->parser;
  bool upstream_reusable =
      forwarded_.keep_alive && response.keep_alive() && response.is_done() && upstream_buffer_.size() == 0;
  if (upstream_reusable)
    context_.pool.put(std::move(*upstream_), runtime_, *upstream_server_);
  else
    upstream_->close();
  upstream_.reset();
  host_.end_exchange(device_response_.keep_alive);
}

// ---- the connection's timer, its end, and memory ---------------------------------------------------------

void Relay::on_timeout(Phase phase) {
  switch (phase) {
    case Phase::delegating:
      // The KDC did not answer in time: a transient outage (503), never a 403 for the device's account.
      ++token_serial_;  // its late answer is dropped
      return host_.refuse(Refusal::kdc_unavailable, "no answer from the KDC within timeouts.authorization_seconds (" +
                                                        std::to_string(runtime_->config.timeouts.authorization.count()) +
                                                        " s)");
    case Phase::upstream_connect:
      if (connecting_) connecting_->close();
      if (upstream_) upstream_->cancel();  // the TLS handshake
      return;
    case Phase::upstream_response:
      if (watch_client_due_) {  // held past the delay: from now on notice the device going away
        watch_client_due_ = false;
        watch_client();
        if (head_bytes_ == 0 && upstream_buffer_.size() == 0) {  // not a byte of answer yet: give the buffer back
          parking_ = true;
          upstream_->cancel();  // the pending read ends with operation_aborted, then park_response_wait()
        }
        return host_.arm(upstream_sent_ + verdict_->upstream_timeout - coarse_now(),
                         Phase::upstream_response);
      }
      if (response_started_) return host_.close();
      if (upstream_) upstream_->cancel();
      return;
    case Phase::request_body:
      client_.cancel();
      if (upstream_) upstream_->cancel();
      return;
    default:
      return;  // not a phase of the relay
  }
}

void Relay::close() {
  if (connecting_) connecting_->close();
  if (upstream_) upstream_->close();
}

void Relay::release_held() {
  if (!held_) return;
  held_ = false;
  context_.shared.metrics().requests_held.dec();
}

char* Relay::buffer() {
  if (!buffer_) buffer_ = context_.relay_buffers.take(runtime_->config.limits.relay_buffer_bytes);
  return buffer_.get();
}

void Relay::release_buffer() {
  context_.relay_buffers.give_back(std::move(buffer_), runtime_->config.limits.relay_buffer_bytes);
}

void Relay::release_idle_memory() {
  release_buffer();
  // The heads' bytes are rebuilt for every request; an idle connection keeps no capacity for them.
  forwarded_.bytes = std::string();
  response_.reset();
  device_response_.bytes = std::string();
  if (upstream_buffer_.size() == 0) upstream_buffer_.shrink_to_fit();
}

}  // namespace easedge::proxy
