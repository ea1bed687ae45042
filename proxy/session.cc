// The per-connection state machine. Each step is a do_x / on_x pair; one timer guards whichever step is
// waiting, and `phase_` tells the timeout handler what a timeout means at that point.
#include "proxy/session.h"

#include "proxy/coarse_clock.h"
#include "proxy/head_reader.h"
#include "proxy/message_framing.h"
#include "proxy/proxy_protocol.h"
#include "proxy/request_log.h"
#include "proxy/request_id.h"

#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

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
      timer_(client_.get_executor()),
      relay_(*this, context_, runtime_, client_, client_buffer_) {
  auto remote = endpoint_of(client_.socket(), true);
  auto local = endpoint_of(client_.socket(), false);
  client_address_ = remote.address().to_string();
  client_port_ = remote.port();
  server_address_ = local.address().to_string();
  server_port_ = local.port();
  proxy_protocol_ = proxy_protocol;
  // A ceiling on what may wait unparsed: a head is bounded by its limit, but Beast reads a chunk-size line
  // or a trailer section whole before parsing it, and nothing else would stop one from growing forever.
  client_buffer_.max_size(runtime_->config.limits.max_request_header_bytes + read_chunk_bytes);
  context_.shared.metrics().connections_open.inc();
  context_.shared.connections().fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() {
  context_.shared.metrics().connections_open.dec();
  context_.sessions.erase(this);
  context_.shared.connections().fetch_sub(1, std::memory_order_relaxed);
}

void Session::start() {
  context_.sessions.insert(this);
  if (proxy_protocol_) return do_read_proxy_header({});
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

void Session::do_read_proxy_header(std::string consumed) {
  arm(runtime_->config.timeouts.handshake, Phase::handshake);
  // The header's bytes read so far travel with the wait: a connection does not carry them once in TLS.
  client_.socket().async_wait(tcp::socket::wait_read,
                              [self = shared_from_this(), consumed = std::move(consumed)](error_code ec) mutable {
                                self->on_proxy_header_readable(ec, std::move(consumed));
                              });
}

void Session::on_proxy_header_readable(error_code ec, std::string consumed) {
  if (ec || closed_) return close();
  auto read = read_proxy_header_step(client_.socket(), consumed);
  if (read.status == ProxyHeaderStatus::invalid) {
    if (!read.error.empty()) spdlog::warn("{}: invalid PROXY protocol header: {}", client_address_, read.error);
    return close();
  }
  if (read.status == ProxyHeaderStatus::need_more) return do_read_proxy_header(std::move(consumed));
  if (read.header.source) {
    client_address_ = read.header.source->address().to_string();
    client_port_ = read.header.source->port();
  }
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
  ++request_serial_;
  request_ = std::make_unique<Request>();
  request_->record.started = std::chrono::steady_clock::now();
  request_->parser.header_limit(limits.max_request_header_bytes);
  limit_upload(request_->parser, limits);
  head_bytes_ = 0;
  arm(runtime_->config.timeouts.request_header, Phase::request_header);
  client_buffer_.reserve(read_chunk_bytes);
  continue_read_header();
}

// The head is parsed here a step at a time (parse_head_step) so limits.max_request_header_bytes holds for
// all of it; Beast's own read operations would apply it to each step only.
void Session::continue_read_header() {
  auto before = head_bytes_;
  auto ec = parse_head_step(request_->parser, client_buffer_, runtime_->config.limits.max_request_header_bytes, head_bytes_);
  if (ec != http::error::need_more) return on_read_header(ec, head_bytes_ - before);
  request_->record.bytes_in += head_bytes_ - before;
  auto room = std::min(client_buffer_.max_size() - client_buffer_.size(), read_chunk_bytes);
  if (room == 0) return on_read_header(http::error::buffer_overflow, 0);
  client_.async_read_some(client_buffer_.prepare(room), [self = shared_from_this()](error_code ec, std::size_t bytes) {
    self->client_buffer_.commit(bytes);
    if (!ec) return self->continue_read_header();
    if (ec == net::error::eof) ec = end_of_stream_in_head(self->request_->parser);
    self->on_read_header(ec, 0);
  });
}

void Session::on_read_header(error_code ec, std::size_t bytes) {
  request_->record.bytes_in += bytes;
  if (ec == http::error::end_of_stream || (ec && bytes == 0 && client_buffer_.size() == 0 && !timed_out_))
    return close();  // the device closed an idle keep-alive connection
  // A head that fills the read buffer's ceiling without ending is over the limit too.
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
    return refuse(Refusal::header_too_large, "request head exceeds limits.max_request_header_bytes " +
                                                 std::to_string(runtime_->config.limits.max_request_header_bytes));
  if (ec == http::error::body_limit)
    return refuse(Refusal::body_too_large, upload_refusal_detail(request_->parser, runtime_->config.limits));
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
  auto& parser = request_->parser;
  auto& head = parser.get();
  request_->record.method = std::string(head.method_string());
  request_->record.target = std::string(head.target());
  client_keep_alive_ = parser.keep_alive();
  admission_->start(std::shared_ptr<Admission>(shared_from_this(), &*admission_), head, parser.chunked(),
                    parser.content_length());
}

void Session::on_admission(AdmissionOutcome&& outcome) {
  auto& verdict = request_->verdict;
  verdict = std::move(outcome);
  request_->record.user = verdict.identity.user;
  if (verdict.refusal) return refuse(*verdict.refusal, std::move(verdict.detail));
  relay_.forward(request_->parser, verdict);
}

// ---- what the relay asks of the connection ----------------------------------------------------------------

std::shared_ptr<void> Session::owner() { return shared_from_this(); }

void Session::end_exchange(bool keep_alive) {
  finish_request();
  if (!keep_alive) return close();
  do_wait_request();
}

// ---- refusing --------------------------------------------------------------------------------------------

void Session::refuse(Refusal reason, std::string detail) {
  const auto& info = describe(reason);
  context_.shared.refusal_counter(reason).inc();
  auto& record = request_->record;
  record.status = info.status;
  record.substatus = info.substatus;
  record.refusal = std::string(info.name);
  record.detail = detail;
  if (record.method.empty()) record.method = std::string(request_->parser.get().method_string());
  if (record.target.empty()) record.target = std::string(request_->parser.get().target());

  // The connection can carry another request only if this one was read to its end.
  bool body_unread = !request_->parser.is_done();
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

  spdlog::info("{} request {} {} {} -> {} {} ({})", client_address_, id, record.method, record.target,
               status_text(info), info.name, detail);

  timed_out_ = false;
  arm(runtime_->config.timeouts.client_write, Phase::refusing);
  http::async_write(client_, *refusal_, [self = shared_from_this(), close_after](error_code ec, std::size_t bytes) {
    self->request_->record.bytes_out += bytes;
    self->on_refusal_written(ec, close_after);
  });
}

void Session::on_refusal_written(error_code ec, bool close_after) {
  refusal_.reset();
  finish_request();
  if (ec) return close();
  if (!close_after) return do_wait_request();
  if (!request_->parser.is_done()) return do_linger();
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
  client_.async_read_some(net::buffer(relay_.buffer(), runtime_->config.limits.relay_buffer_bytes),
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
  relay_.release_server();
  if (!request_ || request_->record.status == 0) return;  // already logged, or nothing was answered
  request_id();                                           // every trace names one
  log_finished_request(context_, runtime_->access_log.get(),
                       {.record = request_->record,
                        .verdict = request_->verdict,
                        .certificate = certificate_.get(),
                        .user_agent = field_value(request_->parser.get(), http::field::user_agent),
                        .client_address = client_address_,
                        .client_port = client_port_,
                        .server_address = server_address_,
                        .server_port = server_port_});
  request_->record.status = 0;
}

const std::string& Session::request_id() {
  auto& id = request_->record.id;
  if (id.empty()) id = context_.request_ids.next();
  return id;
}

void Session::close() {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  client_.close();
  relay_.close();
  if (admission_) admission_->cancel();
}

void Session::arm(std::chrono::steady_clock::duration timeout, Phase phase) {
  phase_ = phase;
  timed_out_ = false;
  deadline_ = coarse_now() + timeout;
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
      timed_out_ = false;  // a transient outage (503): the connection can carry on
      return relay_.on_timeout(phase_);
    case Phase::upstream_connect:
    case Phase::upstream_response:
    case Phase::request_body:
      return relay_.on_timeout(phase_);
    case Phase::request_header:
      // Nothing read yet on this request: just an idle connection to drop; otherwise a 408.
      if (client_buffer_.size() == 0 && head_bytes_ == 0) return close();
      client_.cancel();
      return;
    case Phase::handshake:
    case Phase::idle:
    case Phase::response_body:
    case Phase::refusing:
    case Phase::lingering:
      return close();
  }
}

void Session::release_idle_memory() {
  relay_.release_idle_memory();
  request_.reset();
  if (client_buffer_.size() == 0) client_buffer_.shrink_to_fit();
}

}  // namespace easedge::proxy
