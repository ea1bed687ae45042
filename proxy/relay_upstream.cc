// The relay's upstream side: which Exchange server (issue 14: a retry on another after a failed connect, only
// before any byte of the request went out), its Kerberos token, the connection to it, and what a failure means.
#include "proxy/relay.h"

#include "proxy/coarse_clock.h"
#include "proxy/completion_on_executor.h"

#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

namespace easedge::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// ---- which server --------------------------------------------------------------------------------------

void Relay::choose_upstream() {
  auto& servers = *runtime_->upstreams;
  release_server();
  upstream_server_ = servers.acquire(servers_tried_, coarse_now());
  if (!upstream_server_)
    return host_.refuse(Refusal::upstreams_down, "every upstream server is down (upstream.retry_seconds " +
                                               std::to_string(runtime_->config.upstream.retry.count()) + ")");
  servers_tried_ |= UpstreamServers::Tried{1} << *upstream_server_;
  if (upstream_server().kerberos && !verdict_->identity.user.empty()) return obtain_kerberos_token();
  send_upstream();
}

void Relay::send_upstream() {
  if (auto pooled = context_.pool.take(runtime_, *upstream_server_)) {
    upstream_.emplace(std::move(*pooled));
    upstream_reused_ = true;
    reused_mark_ = delivery_mark(*upstream_);  // issue 17: what a replay must prove
    return start_upstream_request();
  }
  do_connect_upstream();
}

void Relay::do_connect_upstream() {
  upstream_reused_ = false;
  upstream_.reset();
  connect_endpoint_ = 0;
  do_connect_endpoint();
}

void Relay::do_connect_endpoint() {
  auto& servers = *runtime_->upstreams;
  const auto& endpoint = servers[*upstream_server_].endpoints[connect_endpoint_];
  connecting_.emplace(context_.io);
  error_code ec;
  connecting_->open(endpoint.protocol(), ec);
  if (auto source = servers.next_source(endpoint); source && !ec) ec = bind_source(*connecting_, *source);
  if (ec) return on_connect_upstream(ec);
  host_.arm(runtime_->config.timeouts.upstream_connect, Phase::upstream_connect);
  connecting_->async_connect(endpoint, [self = self()](error_code ec) { self->on_connect_upstream(ec); });
}

void Relay::on_connect_upstream(error_code ec) {
  if (ec) {
    connecting_.reset();
    if (!host_.closed() && !host_.timed_out() && ++connect_endpoint_ < upstream_server().endpoints.size())
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
      [self = self()](error_code ec, std::size_t) { self->on_upstream_handshake(ec); });
}

void Relay::on_upstream_handshake(error_code ec) {
  if (ec) return upstream_connect_failed(ec, "TLS handshake");
  context_.shared.note_upstream_success();
  start_upstream_request();
}

// Nothing of the request reached this server: mark it failed and, with several servers, try another.
void Relay::upstream_connect_failed(error_code ec, const char* stage) {
  if (host_.closed()) return upstream_failed(ec, stage);  // the device left: the server did nothing wrong
  auto& servers = *runtime_->upstreams;
  servers.mark_failed(*upstream_server_, std::chrono::steady_clock::now());
  if (servers.size() == 1) return upstream_failed(ec, stage);
  auto detail = std::string(stage) + ": " + (host_.timed_out() ? "timed out" : ec.message());
  spdlog::warn("{}: request {}: upstream {} failed while {}; skipped for {} s, trying another server",
               host_.client_address(), host_.request_id(), upstream_url(), detail, runtime_->config.upstream.retry.count());
  context_.shared.note_upstream_failure(upstream_url() + ": " + detail);
  if (upstream_) upstream_->close();
  upstream_.reset();
  choose_upstream();
}

const UpstreamServer& Relay::upstream_server() const { return (*runtime_->upstreams)[*upstream_server_]; }

const std::string& Relay::upstream_url() const { return upstream_server().config.url; }

void Relay::release_server() {
  if (!upstream_server_) return;
  runtime_->upstreams->release(*upstream_server_);
  upstream_server_.reset();
}

// ---- a reused connection: the answer's first read is its liveness check ----------------------------------

// Instead of peeking at a pooled connection's socket (a system call per request), the read of the answer starts
// before anything of the request happens, and the sending is posted behind it. A server that closed the
// connection, or sent bytes unasked, completes that read at once, and its completion runs before the posted send
// (both wait in the thread's queue, in order): the request goes on another connection, as after a failed peek.
// A server that is there leaves the read waiting, and it reads the answer (held until the request is out). Over
// TLS the read is OpenSSL's: a close_notify, an alert or a record OpenSSL already holds completes it at once too.
void Relay::send_after_liveness_read() {
  early_read_ = EarlyRead::checking;
  do_read_response_header();
  net::post(context_.io, [self = self(), serial = ++send_serial_] {
    if (serial != self->send_serial_ || self->early_read_ != EarlyRead::checking) return;
    self->early_read_ = EarlyRead::pending;
    self->send_request();
  });
}

void Relay::on_reused_connection_unusable(error_code ec) {
  early_read_ = EarlyRead::none;
  ++send_serial_;  // the posted send was for this connection
  if (ec == net::error::operation_aborted || host_.closed()) return upstream_failed(ec, "checking a reused connection");
  if (!ec)
    spdlog::warn("{}: upstream {} sent {} bytes unasked on an idle keep-alive connection: not used, not relayed",
                 host_.client_address(), upstream_url(), upstream_buffer_.size());
  upstream_buffer_.clear();
  context_.pool.note_closed_on_its_own(runtime_, *upstream_server_);
  upstream_->close();
  upstream_.reset();
  send_upstream();  // the next pooled connection, or a new one
}

// ---- the Kerberos token for the chosen Exchange server ----------------------------------------------------

void Relay::obtain_kerberos_token() {
  host_.arm(runtime_->config.timeouts.authorization, Phase::delegating);
  upstream_server().kerberos->token_for(
      verdict_->identity.user,
      CompletionOnExecutor(client_.get_executor(), self(),
                           [serial = ++token_serial_](Relay& self, auth::kerberos::TokenResult result) {
                             if (serial == self.token_serial_ && !self.host_.closed()) self.on_kerberos_token(result);
                           }));
}

void Relay::on_kerberos_token(const auth::kerberos::TokenResult& result) {
  if (auto refusal = refusal_for_token(result)) return host_.refuse(*refusal, result.error().message);
  verdict_->identity.authorization = *result;
  send_upstream();
}

// ---- failures -------------------------------------------------------------------------------------------

void Relay::upstream_failed(error_code ec, const char* stage) {
  stop_watching_client();
  release_held();
  if (!response_started_ && !host_.closed()) {
    context_.shared.metrics().upstream_errors.inc();
    if (!host_.timed_out()) context_.shared.note_upstream_failure(upstream_url() + ": " + stage + ": " + ec.message());
  }
  if (upstream_) upstream_->close();
  upstream_.reset();
  if (host_.closed()) return;
  if (response_started_) {
    host_.record().detail = std::string("upstream failed while ") + stage + ": " + ec.message();
    return host_.end_exchange(false);
  }
  auto detail = std::string(stage) + ": " + (host_.timed_out() ? "timed out" : ec.message());
  spdlog::warn("{}: upstream {} failed while {}", host_.client_address(), upstream_url(), detail);
  host_.refuse(host_.timed_out() ? Refusal::upstream_timeout : Refusal::upstream_unreachable, detail);
}

void Relay::refuse_dropping_upstream(Refusal reason, std::string detail) {
  if (upstream_) upstream_->close();
  upstream_.reset();
  host_.refuse(reason, std::move(detail));
}

}  // namespace easedge::proxy
