// The per-connection state machine. Each step is a do_x / on_x pair; one timer guards whichever step is
// waiting, and `phase_` tells the timeout handler what a timeout means at that point.
#include "proxy/session.h"

#include "eas/command.h"
#include "proxy/completion_on_executor.h"
#include "proxy/head_reader.h"
#include "proxy/proxy_protocol.h"
#include "proxy/request_id.h"

#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <array>

namespace easedge::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// After a refusal sent before the request body was read, keep reading (and discarding) what the device is
// still sending for a moment, so closing does not reset the connection before it has read our answer.
// The time bounds it; the byte cap only bounds the decryption work, and is set well above an upload just over
// limits.upload_read_ahead_bytes (at 1 MiB, a device still sending a 10 MB body got a reset before it read
// its 413 whenever the machine was busy).
constexpr auto lingering_close_time = std::chrono::seconds(2);
constexpr std::size_t lingering_close_bytes = 64 << 20;
// How long Exchange may take to answer before easedge starts watching the device's socket (to release a held
// Ping's upstream connection when the device goes away). Not a limit: it only trades a wait per request
// against noticing a departed device a second later.
constexpr auto held_request_watch_delay = std::chrono::seconds(1);
// Capacity given to a read buffer while a message is read: a whole TLS record. Beast reads as much as the
// buffer has room for, and a buffer shrunk while idle would otherwise be read into 512 bytes at a time (one
// asynchronous round per 512 bytes, 32 per record of an upload). Given back when the connection is idle.
constexpr std::size_t read_chunk_bytes = 16 * 1024;

// A message Beast's parser refused (as opposed to a connection that ended or failed).
bool is_malformed_message(error_code ec) {
  return ec.category() == make_error_code(http::error::bad_version).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

tcp::endpoint endpoint_of(const tcp::socket& socket, bool remote) {
  boost::system::error_code ec;
  auto endpoint = remote ? socket.remote_endpoint(ec) : socket.local_endpoint(ec);
  return ec ? tcp::endpoint() : endpoint;
}

}  // namespace

Session::Session(ThreadContext& context, tcp::socket socket, std::shared_ptr<const Runtime> runtime, bool proxy_protocol)
    : context_(context),
      runtime_(std::move(runtime)),
      client_([&]() -> auth::TlsStream {
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        return auth::TlsStream(std::move(socket), auth::make_server_ssl(runtime_->server_context.get()));
      }()),
      timer_(client_.get_executor()) {
  auto remote = endpoint_of(client_.socket(), true);
  auto local = endpoint_of(client_.socket(), false);
  client_address_ = remote.address().to_string();
  client_port_ = remote.port();
  server_address_ = local.address().to_string();
  server_port_ = local.port();
  proxy_protocol_ = proxy_protocol;
  // Ceilings on what may wait unparsed: a head is bounded by its limit, but Beast reads a chunk-size line
  // or a trailer section whole before parsing it, and nothing else would stop one from growing forever.
  client_buffer_.max_size(runtime_->config.limits.max_request_header_bytes + read_chunk_bytes);
  upstream_buffer_.max_size(runtime_->config.limits.max_response_header_bytes + read_chunk_bytes);
  context_.shared.metrics().connections_open.inc();
  context_.shared.connections().fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() {
  release_upstream_server();
  if (held_) context_.shared.metrics().requests_held.dec();
  context_.shared.metrics().connections_open.dec();
  context_.sessions.erase(this);
  context_.shared.connections().fetch_sub(1, std::memory_order_relaxed);
}

void Session::start() {
  context_.sessions.insert(this);
  if (proxy_protocol_) return do_read_proxy_header();
  do_handshake();
}

void Session::drain() {
  draining_ = true;
  if (phase_ == Phase::idle || phase_ == Phase::handshake) close();
}

// Drain for balancers (issue 14): from SIGTERM on, every answer says Connection: close, so a device's next
// request opens a new connection, which the balancer sends to another node once /readyz fails here.
bool Session::closing() const { return draining_ || context_.shared.draining(); }

// ---- PROXY protocol and handshake ------------------------------------------------------------------------

void Session::do_read_proxy_header() {
  arm(runtime_->config.timeouts.handshake, Phase::handshake);
  client_.socket().async_wait(tcp::socket::wait_read,
                              [self = shared_from_this()](error_code ec) { self->on_proxy_header_readable(ec); });
}

void Session::on_proxy_header_readable(error_code ec) {
  if (ec || closed_) return close();
  // Peek, then consume only bytes that belong to the header: OpenSSL reads the socket itself afterwards,
  // so the TLS ClientHello must stay in the kernel's buffer.
  std::array<char, proxy_header_max_bytes> peeked;
  auto fd = client_.socket().native_handle();
  ssize_t n = ::recv(fd, peeked.data(), peeked.size() - proxy_header_.size(), MSG_PEEK);
  if (n <= 0) return close();
  std::string candidate = proxy_header_ + std::string(peeked.data(), static_cast<std::size_t>(n));
  auto parsed = parse_proxy_header(candidate);
  std::size_t take = parsed.status == ProxyHeaderStatus::complete ? parsed.header.length - proxy_header_.size()
                                                                  : static_cast<std::size_t>(n);
  if (parsed.status == ProxyHeaderStatus::invalid) {
    spdlog::warn("{}: invalid PROXY protocol header: {}", client_address_, parsed.error);
    return close();
  }
  if (::recv(fd, peeked.data(), take, 0) != static_cast<ssize_t>(take)) return close();
  proxy_header_.append(peeked.data(), take);
  if (parsed.status == ProxyHeaderStatus::need_more) return do_read_proxy_header();
  if (parsed.header.source) {
    client_address_ = parsed.header.source->address().to_string();
    client_port_ = parsed.header.source->port();
  }
  proxy_header_.clear();
  proxy_header_.shrink_to_fit();
  do_handshake();
}

void Session::do_handshake() {
  arm(runtime_->config.timeouts.handshake, Phase::handshake);
  client_.async_handshake([self = shared_from_this()](error_code ec, std::size_t) { self->on_handshake(ec); });
}

void Session::on_handshake(error_code ec) {
  auto& metrics = context_.shared.metrics();
  if (ec) {
    metrics.handshakes.with({timed_out_ ? "timeout" : "failed"}).inc();
    spdlog::debug("{}: TLS handshake failed: {}", client_address_, ec.message());
    return close();
  }
  metrics.handshakes.with({"ok"}).inc();
  (SSL_session_reused(client_.ssl()) ? metrics.resumed_handshakes : metrics.full_handshakes).inc();
  if (runtime_->config.tls.client_certificate != config::ClientCertificateMode::off)
    certificate_ = runtime_->validator->verdict_for(client_.ssl());
  // The callbacks may use `this`: the admission is this session's member and calls them only while a step
  // runs, inline or from an answer that keeps the session alive (start() hands it an aliasing owner).
  admission_.emplace(admission_context(*runtime_), client_.get_executor(), certificate_, client_address_,
                     [this] { arm(runtime_->config.timeouts.authorization, Phase::authorizing); },
                     [this](AdmissionOutcome&& outcome) { on_admission(std::move(outcome)); });
  do_wait_request();
}

// ---- reading a request -----------------------------------------------------------------------------------

void Session::do_wait_request() {
  if (draining_) return close();
  if (client_buffer_.size() > 0) return do_read_header();  // a pipelined request is already here
  release_idle_memory();
  // A connection that completed its handshake but never sent a request gets no more time than a handshake:
  // otherwise anyone can hold a descriptor for client_idle (120 s) with one TLS handshake.
  arm(request_serial_ == 0 ? runtime_->config.timeouts.handshake : runtime_->config.timeouts.client_idle,
      Phase::idle);
  client_.async_wait_readable([self = shared_from_this()](error_code ec) { self->on_request_readable(ec); });
}

void Session::on_request_readable(error_code ec) {
  if (ec || closed_) return close();
  do_read_header();
}

void Session::do_read_header() {
  const auto& limits = runtime_->config.limits;
  record_ = RequestRecord{};
  ++request_serial_;
  record_.started = std::chrono::steady_clock::now();
  verdict_ = AdmissionOutcome{};
  request_body_started_ = false;
  response_started_ = false;
  request_ = std::make_unique<request_parser>();
  request_->header_limit(limits.max_request_header_bytes);
  request_->body_limit(limits.upload_read_ahead_bytes);
  head_bytes_ = 0;
  arm(runtime_->config.timeouts.request_header, Phase::request_header);
  client_buffer_.reserve(read_chunk_bytes);
  continue_read_header();
}

// The head is parsed here a step at a time (parse_head_step) so limits.max_request_header_bytes holds for
// all of it; Beast's own read operations would apply it to each step only.
void Session::continue_read_header() {
  auto before = head_bytes_;
  auto ec = parse_head_step(*request_, client_buffer_, runtime_->config.limits.max_request_header_bytes, head_bytes_);
  if (ec != http::error::need_more) return on_read_header(ec, head_bytes_ - before);
  record_.bytes_in += head_bytes_ - before;
  auto room = std::min(client_buffer_.max_size() - client_buffer_.size(), read_chunk_bytes);
  if (room == 0) return on_read_header(http::error::buffer_overflow, 0);
  client_.async_read_some(client_buffer_.prepare(room), [self = shared_from_this()](error_code ec, std::size_t bytes) {
    self->client_buffer_.commit(bytes);
    if (!ec) return self->continue_read_header();
    if (ec == net::error::eof) ec = end_of_stream_in_head(*self->request_);
    self->on_read_header(ec, 0);
  });
}

void Session::on_read_header(error_code ec, std::size_t bytes) {
  record_.bytes_in += bytes;
  if (ec == http::error::end_of_stream || (ec && bytes == 0 && client_buffer_.size() == 0 && !timed_out_))
    return close();  // the device closed an idle keep-alive connection
  // A head that fills the read buffer's ceiling without ending is over the limit too.
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
    return refuse(Refusal::header_too_large, "request head exceeds limits.max_request_header_bytes " +
                                                 std::to_string(runtime_->config.limits.max_request_header_bytes));
  if (ec == http::error::body_limit)
    return refuse(Refusal::body_too_large,
                  "Content-Length " + std::to_string(request_->content_length().value_or(0)) +
                      " exceeds limits.upload_read_ahead_bytes " +
                      std::to_string(runtime_->config.limits.upload_read_ahead_bytes));
  if (timed_out_) return refuse(Refusal::request_timeout, "request header not received in time");
  if (ec) {
    if (closed_ || ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::error::connection_reset)
      return close();
    return refuse(Refusal::bad_request, "malformed request: " + ec.message());
  }
  process_request();
}

// ---- deciding (proxy/admission.cc) ------------------------------------------------------------------------

void Session::process_request() {
  auto& head = request_->get();
  record_.method = std::string(head.method_string());
  record_.target = std::string(head.target());
  client_keep_alive_ = request_->keep_alive();
  admission_->start(std::shared_ptr<Admission>(shared_from_this(), &*admission_), head, request_->chunked(),
                    request_->content_length());
}

void Session::on_admission(AdmissionOutcome&& outcome) {
  verdict_ = std::move(outcome);
  record_.user = verdict_.identity.user;
  if (verdict_.refusal) return refuse(*verdict_.refusal, std::move(verdict_.detail));
  forward();
}

// ---- the Kerberos token for the chosen Exchange server ----------------------------------------------------

void Session::obtain_kerberos_token() {
  arm(runtime_->config.timeouts.authorization, Phase::delegating);
  upstream_server().kerberos->token_for(
      verdict_.identity.user,
      CompletionOnExecutor(client_.get_executor(), shared_from_this(),
                           [serial = ++token_serial_](Session& self, auth::kerberos::TokenResult result) {
                             if (serial == self.token_serial_ && !self.closed_) self.on_kerberos_token(result);
                           }));
}

void Session::on_kerberos_token(const auth::kerberos::TokenResult& result) {
  if (auto refusal = refusal_for_token(result)) return refuse(*refusal, result.message);
  verdict_.identity.authorization = result.header_value;
  send_upstream();
}

// ---- forwarding the request ------------------------------------------------------------------------------

void Session::forward() {
  servers_tried_ = 0;
  choose_upstream();
}

// ==== upstream servers (issue 14): which server, with a retry on another after a failed connect ====

void Session::choose_upstream() {
  auto& servers = *runtime_->upstreams;
  release_upstream_server();
  upstream_server_ = servers.acquire(servers_tried_, std::chrono::steady_clock::now());
  if (!upstream_server_)
    return refuse(Refusal::upstreams_down, "every upstream server is down (upstream.retry_seconds " +
                                               std::to_string(runtime_->config.upstream.retry.count()) + ")");
  servers_tried_ |= UpstreamServers::Tried{1} << *upstream_server_;
  if (upstream_server().kerberos && !verdict_.identity.user.empty()) return obtain_kerberos_token();
  send_upstream();
}

void Session::send_upstream() {
  forwarded_ = std::make_unique<ForwardedRequest>(
      forwarded_request(request_->get(), verdict_.framing, runtime_->header_policy, verdict_.identity));
  // Exchange's logs can then be joined with easedge's access log line; a device's own X-Request-Id is replaced.
  forwarded_->set(request_id_header, request_id());
  if (auto pooled = context_.pool.take(runtime_, *upstream_server_)) {
    upstream_.emplace(std::move(*pooled));
    upstream_reused_ = true;
    reused_mark_ = delivery_mark(*upstream_);  // issue 17: what a replay must prove
    return start_upstream_request();
  }
  do_connect_upstream();
}

void Session::do_connect_upstream() {
  upstream_reused_ = false;
  upstream_.reset();
  connect_endpoint_ = 0;
  do_connect_endpoint();
}

void Session::do_connect_endpoint() {
  auto& servers = *runtime_->upstreams;
  const auto& endpoint = servers[*upstream_server_].endpoints[connect_endpoint_];
  connecting_.emplace(context_.io);
  error_code ec;
  connecting_->open(endpoint.protocol(), ec);
  if (auto source = servers.next_source(endpoint); source && !ec) ec = bind_source(*connecting_, *source);
  if (ec) return on_connect_upstream(ec);
  arm(runtime_->config.timeouts.upstream_connect, Phase::upstream_connect);
  connecting_->async_connect(endpoint, [self = shared_from_this()](error_code ec) { self->on_connect_upstream(ec); });
}

void Session::on_connect_upstream(error_code ec) {
  if (ec) {
    connecting_.reset();
    if (!closed_ && !timed_out_ && ++connect_endpoint_ < upstream_server().endpoints.size())
      return do_connect_endpoint();  // the server's name has further addresses
    return upstream_connect_failed(ec, "connect");
  }
  connecting_->set_option(tcp::no_delay(true), ec);
  if (runtime_->upstream_context && upstream_server().config.scheme == "https") {
    upstream_.emplace(std::move(*connecting_),
                      auth::make_upstream_ssl(runtime_->upstream_context.get(), upstream_server().config.server_name));
  } else {
    upstream_.emplace(std::move(*connecting_));
  }
  connecting_.reset();
  upstream_->async_handshake(
      [self = shared_from_this()](error_code ec, std::size_t) { self->on_upstream_handshake(ec); });
}

void Session::on_upstream_handshake(error_code ec) {
  if (ec) return upstream_connect_failed(ec, "TLS handshake");
  context_.shared.note_upstream_success();
  start_upstream_request();
}

// Nothing of the request reached this server: mark it failed and, with several servers, try another.
void Session::upstream_connect_failed(error_code ec, const char* stage) {
  if (closed_) return upstream_failed(ec, stage);  // the device left: the server did nothing wrong
  auto& servers = *runtime_->upstreams;
  servers.mark_failed(*upstream_server_, std::chrono::steady_clock::now());
  if (servers.size() == 1) return upstream_failed(ec, stage);
  auto detail = std::string(stage) + ": " + (timed_out_ ? "timed out" : ec.message());
  spdlog::warn("{}: request {}: upstream {} failed while {}; skipped for {} s, trying another server", client_address_,
               request_id(), upstream_url(), detail, runtime_->config.upstream.retry.count());
  context_.shared.note_upstream_failure(upstream_url() + ": " + detail);
  if (upstream_) upstream_->close();
  upstream_.reset();
  choose_upstream();
}

void Session::release_upstream_server() {
  if (!upstream_server_) return;
  runtime_->upstreams->release(*upstream_server_);
  upstream_server_.reset();
}

const UpstreamServer& Session::upstream_server() const { return (*runtime_->upstreams)[*upstream_server_]; }

const std::string& Session::upstream_url() const { return upstream_server().config.url; }

// ==== end of upstream servers ====

void Session::start_upstream_request() {
  // The head goes out together with the first body bytes (one TLS record, one write): read before writing.
  request_writer_ = std::make_unique<http::request_serializer<http::buffer_body>>(*forwarded_);
  set_body_piece(forwarded_->body(), nullptr, 0, false);
  if (request_->is_done()) return do_write_upstream_body();
  if (verdict_.expect_continue) return do_send_continue();
  do_read_request_body();
}

void Session::do_send_continue() {
  // The request passed every check: now the device may send its body (Expect: 100-continue).
  static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
  verdict_.expect_continue = false;
  net::async_write(client_, net::buffer(continue_line.data(), continue_line.size()),
                   [self = shared_from_this()](error_code ec, std::size_t) {
                     if (ec) return self->close();
                     self->do_read_request_body();
                   });
}

void Session::do_read_request_body() {
  request_body_started_ = true;
  auto& body = request_->get().body();
  body.data = relay_buffer();
  body.size = runtime_->config.limits.relay_buffer_bytes;
  arm(runtime_->config.timeouts.client_body, Phase::request_body);
  http::async_read(client_, client_buffer_, *request_,
                   [self = shared_from_this()](error_code ec, std::size_t bytes) {
                     self->on_read_request_body(ec, bytes);
                   });
}

void Session::on_read_request_body(error_code ec, std::size_t bytes) {
  if (ec == http::error::need_buffer) ec = {};
  auto& body = request_->get().body();
  std::size_t got = runtime_->config.limits.relay_buffer_bytes - body.size;
  record_.bytes_in += bytes;
  if (ec == http::error::body_limit) {
    // Part of the body already went upstream: that connection is spoiled.
    if (upstream_) upstream_->close();
    upstream_.reset();
    return refuse(Refusal::body_too_large, "chunked body exceeds limits.upload_read_ahead_bytes " +
                                               std::to_string(runtime_->config.limits.upload_read_ahead_bytes));
  }
  if (ec) {
    if (upstream_) upstream_->close();
    upstream_.reset();
    if (timed_out_) return refuse(Refusal::request_timeout, "request body stalled");
    if (ec == net::error::eof || ec == http::error::partial_message || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted || closed_) {
      spdlog::info("{}: device closed the connection mid-body after {} bytes", client_address_, record_.bytes_in);
      return close();
    }
    return refuse(Refusal::bad_request, "malformed request body: " + ec.message());
  }
  set_body_piece(forwarded_->body(), relay_.get(), got, !request_->is_done());
  do_write_upstream_body();
}

void Session::do_write_upstream_body() {
  arm(runtime_->config.timeouts.client_body, Phase::request_body);
  http::async_write(*upstream_, *request_writer_, [self = shared_from_this()](error_code ec, std::size_t bytes) {
    self->on_write_upstream_body(ec, bytes);
  });
}

void Session::on_write_upstream_body(error_code ec, std::size_t) {
  if (ec == http::error::need_buffer) ec = {};
  if (ec) return upstream_failed(ec, "sending the request body");
  if (request_writer_->is_done()) return do_wait_response();
  if (!request_->is_done()) return do_read_request_body();
  // The last chunk went out; the serializer still owes the terminator.
  set_body_piece(forwarded_->body(), nullptr, 0, false);
  do_write_upstream_body();
}

// ---- relaying the response -------------------------------------------------------------------------------

void Session::do_wait_response() {
  // A held Ping waits here for up to an hour: hold no relay buffer meanwhile.
  release_relay_buffer();
  if (client_buffer_.size() == 0) client_buffer_.shrink_to_fit();
  upstream_sent_ = std::chrono::steady_clock::now();
  if (!held_) context_.shared.metrics().requests_held.inc();
  held_ = true;
  // Most answers come within milliseconds: the device's socket is watched only once Exchange holds the
  // request for a while, which spares a readiness wait and its cancellation on every Sync.
  watch_client_due_ = verdict_.upstream_timeout > held_request_watch_delay;
  arm(watch_client_due_ ? held_request_watch_delay : verdict_.upstream_timeout, Phase::upstream_response);
  upstream_->async_wait_readable([self = shared_from_this()](error_code ec) { self->on_response_readable(ec); });
}

// While Exchange holds a Ping, notice a device that goes away (network change, sleep) so its upstream
// connection is released now instead of when Exchange answers up to an hour later.
void Session::watch_client() {
  watching_client_ = true;
  client_.socket().async_wait(tcp::socket::wait_read,
                              [self = shared_from_this()](error_code ec) { self->on_client_activity(ec); });
}

void Session::on_client_activity(error_code ec) {
  if (!watching_client_ || ec || closed_) return;
  watching_client_ = false;
  switch (client_.peek_peer()) {
    case auth::TlsStream::PeerState::sent_data: return;  // a pipelined request: it is read after this response
    case auth::TlsStream::PeerState::partial_record: return watch_client();
    case auth::TlsStream::PeerState::busy: return;       // still there, busy with TLS housekeeping
    case auth::TlsStream::PeerState::gone: break;
  }
  spdlog::debug("{}: device left while its request was held upstream", client_address_);
  record_.detail = "device closed the connection while the request was held upstream";
  close();
}

void Session::stop_watching_client() {
  watch_client_due_ = false;
  if (!watching_client_) return;
  watching_client_ = false;
  client_.cancel();
}

void Session::on_response_readable(error_code ec) {
  stop_watching_client();
  if (ec) return upstream_failed(ec, "waiting for the response");
  do_read_response_header();
}

void Session::do_read_response_header() {
  response_ = std::make_unique<response_parser>();
  response_->header_limit(runtime_->config.limits.max_response_header_bytes);
  response_->body_limit(boost::none);
  head_bytes_ = 0;
  upstream_buffer_.reserve(read_chunk_bytes);
  continue_read_response_header();
}

// A step at a time for the same reason as the request head: the limit holds for the whole head.
void Session::continue_read_response_header() {
  auto ec = parse_head_step(*response_, upstream_buffer_, runtime_->config.limits.max_response_header_bytes,
                            head_bytes_);
  if (ec != http::error::need_more) return on_read_response_header(ec);
  auto room = std::min(upstream_buffer_.max_size() - upstream_buffer_.size(), read_chunk_bytes);
  if (room == 0) return on_read_response_header(http::error::buffer_overflow);
  upstream_->async_read_some(upstream_buffer_.prepare(room), [self = shared_from_this()](error_code ec, std::size_t bytes) {
    self->upstream_buffer_.commit(bytes);
    if (!ec) return self->continue_read_response_header();
    if (ec == net::error::eof) ec = end_of_stream_in_head(*self->response_);
    self->on_read_response_header(ec);
  });
}

void Session::on_read_response_header(error_code ec) {
  if (ec) {
    // A reused keep-alive connection the upstream had closed before the request reached it: replayed once on
    // a fresh connection when no body was consumed from the device and the kernel proves the server never
    // took a byte of it (issue 17: never a request the server may have processed).
    if (upstream_reused_ && !request_body_started_ && !timed_out_ && upstream_buffer_.size() == 0 &&
        head_bytes_ == 0 && never_reached_server(*upstream_, reused_mark_)) {
      upstream_->close();
      return do_connect_upstream();
    }
    if (is_malformed_message(ec)) {
      upstream_->close();
      upstream_.reset();
      return refuse(Refusal::upstream_bad_response, "malformed response head: " + ec.message());
    }
    return upstream_failed(ec, "reading the response header");
  }
  auto& response = response_->get();
  if (response.result_int() / 100 == 1) return do_read_response_header();  // interim 1xx: not for the device
  relay_response_header();
}

void Session::relay_response_header() {
  auto& response = response_->get();
  release_held();
  context_.shared.metrics().upstream_latency.with({command_label()}).observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - upstream_sent_).count());
  record_.upstream_status = static_cast<std::uint16_t>(response.result_int());
  if (response.result() == http::status::unauthorized && upstream_server().kerberos) {
    // A fresh delegated token was refused: retrying would loop. Tell the operator, give the device a 502.
    spdlog::error("Exchange answered 401 to a fresh Kerberos token for {}: check that {} is the SPN Exchange "
                  "accepts and that Exchange has Kerberos (Negotiate) authentication enabled for ActiveSync",
                  verdict_.identity.user, upstream_server().config.service);
    upstream_server().kerberos->forget(verdict_.identity.user);  // a stale ticket must not keep failing until it expires
    upstream_->close();
    upstream_.reset();
    return refuse(Refusal::upstream_rejected_identity, "Exchange answered 401 to a fresh Kerberos token");
  }
  // The device gets easedge's framing of what easedge read, never the upstream's head: a response Exchange
  // (or anything posing as it) frames ambiguously is a 502, not a second response smuggled to the device.
  auto framing = response_framing(response, response.result_int());
  if (framing && !parser_agrees(framing.framing, response_->chunked(), response_->content_length()))
    framing.problem = "the parser reads the body length differently";
  if (!framing) {
    upstream_->close();
    upstream_.reset();
    spdlog::warn("{}: upstream {} sent an ambiguously framed response: {}", client_address_,
                 upstream_url(), framing.problem);
    return refuse(Refusal::upstream_bad_response, "ambiguous response framing: " + framing.problem);
  }
  record_.status = record_.upstream_status;
  device_response_ = std::make_unique<DeviceResponse>(device_response(
      response, framing.framing, request_->get().version(), client_keep_alive_ && !closing()));
  response_started_ = true;
  response_writer_ = std::make_unique<http::response_serializer<http::buffer_body>>(*device_response_);
  set_body_piece(device_response_->body(), nullptr, 0, false);
  // Head and first body bytes go to the device in one write.
  if (response_->is_done()) return do_write_response_body();
  do_read_response_body();
}

void Session::do_read_response_body() {
  auto& body = response_->get().body();
  body.data = relay_buffer();
  body.size = runtime_->config.limits.relay_buffer_bytes;
  arm(runtime_->config.timeouts.upstream_response, Phase::response_body);
  http::async_read(*upstream_, upstream_buffer_, *response_,
                   [self = shared_from_this()](error_code ec, std::size_t bytes) {
                     self->on_read_response_body(ec, bytes);
                   });
}

void Session::on_read_response_body(error_code ec, std::size_t) {
  if (ec == http::error::need_buffer) ec = {};
  if (ec && !response_writer_->is_header_done()) {
    response_started_ = false;  // nothing reached the device yet: it can still get a clean 502
    if (is_malformed_message(ec)) {
      upstream_->close();
      upstream_.reset();
      return refuse(Refusal::upstream_bad_response, "malformed response body: " + ec.message());
    }
    return upstream_failed(ec, "reading the response body");
  }
  if (ec) {
    // The header already went to the device: all that is left is to cut the connection so it notices.
    spdlog::warn("{}: upstream response body broke off: {}", client_address_, ec.message());
    record_.detail = "upstream response body broke off: " + ec.message();
    finish_request();
    return close();
  }
  auto got = runtime_->config.limits.relay_buffer_bytes - response_->get().body().size;
  set_body_piece(device_response_->body(), relay_.get(), got, !response_->is_done());
  do_write_response_body();
}

void Session::do_write_response_body() {
  arm(runtime_->config.timeouts.client_write, Phase::response_body);
  http::async_write(client_, *response_writer_, [self = shared_from_this()](error_code ec, std::size_t bytes) {
    self->on_write_response_body(ec, bytes);
  });
}

void Session::on_write_response_body(error_code ec, std::size_t bytes) {
  if (ec == http::error::need_buffer) ec = {};
  record_.bytes_out += bytes;
  if (ec) return close();
  if (response_writer_->is_done()) return finish_exchange();
  if (!response_->is_done()) return do_read_response_body();
  set_body_piece(device_response_->body(), nullptr, 0, false);  // the serializer still owes the last chunk
  do_write_response_body();
}

void Session::finish_exchange() {
  bool upstream_reusable =
      forwarded_->keep_alive() && response_->keep_alive() && response_->is_done() && upstream_buffer_.size() == 0;
  if (upstream_reusable)
    context_.pool.put(std::move(*upstream_), runtime_, *upstream_server_);
  else
    upstream_->close();
  upstream_.reset();
  bool keep_alive = device_response_->keep_alive();
  finish_request();
  if (!keep_alive) return close();
  do_wait_request();
}

void Session::upstream_failed(error_code ec, const char* stage) {
  stop_watching_client();
  release_held();
  if (!response_started_ && !closed_) {
    context_.shared.metrics().upstream_errors.inc();
    if (!timed_out_) context_.shared.note_upstream_failure(upstream_url() + ": " + stage + ": " + ec.message());
  }
  if (upstream_) upstream_->close();
  upstream_.reset();
  if (closed_) return;
  if (response_started_) {
    record_.detail = std::string("upstream failed while ") + stage + ": " + ec.message();
    finish_request();
    return close();
  }
  auto detail = std::string(stage) + ": " + (timed_out_ ? "timed out" : ec.message());
  spdlog::warn("{}: upstream {} failed while {}", client_address_, upstream_url(), detail);
  refuse(timed_out_ ? Refusal::upstream_timeout : Refusal::upstream_unreachable, detail);
}

// ---- refusing --------------------------------------------------------------------------------------------

void Session::refuse(Refusal reason, std::string detail) {
  const auto& info = describe(reason);
  context_.shared.refusal_counter(reason).inc();
  record_.status = info.status;
  record_.substatus = info.substatus;
  record_.refusal = std::string(info.name);
  record_.detail = detail;
  if (record_.method.empty() && request_) record_.method = std::string(request_->get().method_string());
  if (record_.target.empty() && request_) record_.target = std::string(request_->get().target());

  // The connection can carry another request only if this one was read to its end.
  bool body_unread = request_ && !request_->is_done();
  bool close_after = info.close_connection || body_unread || !client_keep_alive_ || closing() || timed_out_;

  // The device learns the class and an id; the operator finds the detail under that id in the log line below.
  const auto& id = request_id();
  refusal_ = std::make_unique<http::response<http::string_body>>(static_cast<http::status>(info.status), 11);
  refusal_->set(http::field::server, "easedge");
  refusal_->set(http::field::content_type, "text/plain; charset=utf-8");
  refusal_->set(http::field::cache_control, "no-store");
  refusal_->set(request_id_header, id);
  if (info.retry_after)
    refusal_->set(http::field::retry_after, std::to_string(runtime_->config.timeouts.retry_after.count()));
  refusal_->body() = refusal_body(reason, id);
  refusal_->keep_alive(!close_after);
  refusal_->prepare_payload();

  spdlog::info("{} request {} {} {} -> {} {} ({})", client_address_, id, record_.method, record_.target,
               status_text(info), info.name, detail);

  timed_out_ = false;
  arm(runtime_->config.timeouts.client_write, Phase::refusing);
  http::async_write(client_, *refusal_, [self = shared_from_this(), close_after](error_code ec, std::size_t bytes) {
    self->record_.bytes_out += bytes;
    self->on_refusal_written(ec, close_after);
  });
}

void Session::on_refusal_written(error_code ec, bool close_after) {
  refusal_.reset();
  finish_request();
  if (ec) return close();
  if (!close_after) return do_wait_request();
  if (request_ && !request_->is_done()) return do_linger();
  close();
}

void Session::do_linger() {
  // Half-close, then discard what the device still sends for a moment: it reads our answer instead of a reset.
  client_.shutdown_send();
  lingered_bytes_ = 0;
  arm(lingering_close_time, Phase::lingering);
  do_linger_read();
}

void Session::do_linger_read() {
  client_.async_read_some(net::buffer(relay_buffer(), runtime_->config.limits.relay_buffer_bytes),
                          [self = shared_from_this()](error_code ec, std::size_t bytes) {
                            self->on_linger_read(ec, bytes);
                          });
}

void Session::on_linger_read(error_code ec, std::size_t bytes) {
  lingered_bytes_ += bytes;
  if (ec || closed_ || lingered_bytes_ > lingering_close_bytes) return close();
  do_linger_read();
}

// ---- ends ------------------------------------------------------------------------------------------------

void Session::finish_request() {
  release_upstream_server();
  if (record_.status == 0) return;  // already logged, or nothing was answered
  auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                        record_.started);
  context_.shared.metrics().requests.with({std::to_string(record_.status), command_label()}).inc();
  const auto& eas = verdict_.eas;
  std::string_view command = eas.command ? eas::command_name(*eas.command) : std::string_view();
  if (auto* log = runtime_->access_log.get()) {
    std::string_view target = record_.target;
    auto question = target.find('?');
    std::string_view user_agent;
    if (request_) user_agent = request_->get()[http::field::user_agent];
    AccessLogRecord entry{
        .time = std::chrono::system_clock::now(),
        .server_ip = server_address_,
        .server_port = server_port_,
        .client_ip = client_address_,
        .client_port = client_port_,
        .method = record_.method,
        .uri_stem = target.substr(0, question),
        .uri_query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1),
        .user = record_.user,  // never the query's User=: that is the device's claim, not who it is
        .cert_sha256 = certificate_ ? std::string_view(certificate_->sha256_hex) : std::string_view(),
        .user_agent = user_agent,
        .eas_command = command,
        .device_id = eas.device_id,
        .device_type = eas.device_type,
        .status = record_.status,
        .substatus = record_.substatus,
        .win32_status = 0,
        .bytes_in = record_.bytes_in,
        .bytes_out = record_.bytes_out,
        .duration = elapsed,
        .upstream_status = record_.upstream_status,
        .request_id = request_id(),
    };
    log->write(entry);
  }
  // ---- operator console: the one place a finished request (refused or not) reaches the console log ----
  context_.shared.console_log().record({.time = std::chrono::system_clock::now(),
                                         .client_address = client_address_,
                                         .subject = certificate_ ? std::string_view(certificate_->subject) : "",
                                         .cert_sha256 = certificate_ ? std::string_view(certificate_->sha256_hex) : "",
                                         .user = record_.user,
                                         .device_id = eas.device_id,
                                         .device_type = eas.device_type,
                                         .command = command,
                                         .status = record_.status,
                                         .substatus = record_.substatus,
                                         .refusal = record_.refusal,
                                         .detail = record_.detail,
                                         .request_id = request_id()});
  // ---- end operator console ----
  record_.status = 0;
}

const std::string& Session::request_id() {
  if (record_.id.empty()) record_.id = context_.request_ids.next();
  return record_.id;
}

void Session::close() {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  client_.close();
  if (connecting_) connecting_->close();
  if (upstream_) upstream_->close();
  if (admission_) admission_->cancel();
}

void Session::arm(std::chrono::steady_clock::duration timeout, Phase phase) {
  phase_ = phase;
  timed_out_ = false;
  deadline_ = std::chrono::steady_clock::now() + timeout;
  if (timer_waiting_ && timer_.expiry() <= deadline_) return;  // the pending wait fires first and waits again
  start_timer();
}

void Session::start_timer() {
  timer_waiting_ = true;
  timer_.expires_at(deadline_);  // a superseded wait completes with operation_aborted
  timer_.async_wait([self = shared_from_this(), generation = ++timer_generation_](error_code ec) {
    if (ec || generation != self->timer_generation_) return;
    self->on_timer();
  });
}

void Session::on_timer() {
  timer_waiting_ = false;
  if (closed_) return;
  if (std::chrono::steady_clock::now() < deadline_) return start_timer();
  on_timeout();
}

void Session::on_timeout() {
  timed_out_ = true;
  switch (phase_) {
    case Phase::authorizing:
      timed_out_ = false;  // the refusal admission gives says so; the connection can carry on
      return admission_->expire();
    case Phase::delegating:
      // The KDC did not answer in time: a transient outage (503), never a 403 for the device's account.
      ++token_serial_;  // its late answer is dropped
      timed_out_ = false;
      return refuse(Refusal::kdc_unavailable, "no answer from the KDC within timeouts.authorization_seconds (" +
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
        return arm(upstream_sent_ + verdict_.upstream_timeout - std::chrono::steady_clock::now(), Phase::upstream_response);
      }
      if (response_started_) return close();
      if (upstream_) upstream_->cancel();
      return;
    case Phase::request_header:
      // Nothing read yet on this request: just an idle connection to drop; otherwise a 408.
      if (client_buffer_.size() == 0 && head_bytes_ == 0) return close();
      client_.cancel();
      return;
    case Phase::request_body:
      client_.cancel();
      if (upstream_) upstream_->cancel();
      return;
    case Phase::handshake:
    case Phase::idle:
    case Phase::response_body:
    case Phase::refusing:
    case Phase::lingering:
      return close();
  }
}

void Session::release_held() {
  if (!held_) return;
  held_ = false;
  context_.shared.metrics().requests_held.dec();
}

std::string_view Session::command_label() const {
  const auto& command = verdict_.eas.command;
  return command ? eas::command_name(*command) : std::string_view("none");
}

char* Session::relay_buffer() {
  if (!relay_) relay_ = context_.relay_buffers.take(runtime_->config.limits.relay_buffer_bytes);
  return relay_.get();
}

void Session::release_relay_buffer() {
  context_.relay_buffers.give_back(std::move(relay_), runtime_->config.limits.relay_buffer_bytes);
}

void Session::release_idle_memory() {
  release_relay_buffer();
  request_.reset();
  request_writer_.reset();
  forwarded_.reset();
  response_.reset();
  device_response_.reset();
  response_writer_.reset();
  if (client_buffer_.size() == 0) client_buffer_.shrink_to_fit();
  if (upstream_buffer_.size() == 0) upstream_buffer_.shrink_to_fit();
}

}  // namespace easedge::proxy
