// An admitted request's way to Exchange and back: the server's choice (and a retry on another before any byte
// went out), its Kerberos token, both bodies streamed, the upload limit, the held-Ping watch, upstream failures.
#pragma once

#include "auth/kerberos/delegator.h"
#include "auth/tls_stream.h"
#include "config/config.h"
#include "proxy/admission.h"
#include "proxy/forwarded_headers.h"
#include "proxy/head_arena.h"
#include "proxy/outgoing_body.h"
#include "proxy/read_buffer.h"
#include "proxy/refusal.h"
#include "proxy/request_record.h"
#include "proxy/runtime.h"
#include "proxy/thread_context.h"
#include "proxy/upstream_pool.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace easedge::proxy {

using boost::beast::error_code;

using RequestParser = RequestHeadParser<http::buffer_body>;

// The upload limit (limits.upload_read_ahead_bytes), decided here and nowhere else. It is set on every request
// parser, which then stops a declared Content-Length over it while the head is read (before admission: no
// directory lookup for an upload that cannot pass) and a chunked body as it streams. Either way the parser's
// http::error::body_limit becomes Refusal::body_too_large with this detail.
void limit_upload(RequestParser& parser, const config::LimitsConfig& limits);
std::string upload_refusal_detail(const RequestParser& parser, const config::LimitsConfig& limits);

// The device's side of a relay: the connection that owns it, its one timer and its answers. A Relay calls it
// only from handlers running on the connection's executor.
class RelayHost {
public:
  // Shares the connection's ownership: a pending operation holds it, so the connection (and its Relay) lives
  // until the handler ran, and is destroyed on its own executor.
  virtual std::shared_ptr<void> owner() = 0;
  virtual void arm(std::chrono::steady_clock::duration timeout, Phase phase) = 0;
  virtual bool timed_out() const = 0;
  virtual bool closed() const = 0;
  // The device may send another request after this answer: it asked to, and nothing is draining.
  virtual bool device_keeps_alive() const = 0;
  virtual void refuse(Refusal reason, std::string detail) = 0;
  // The response went to the device (whole, or cut off: keep_alive false): log the request, then read the
  // next one or close.
  virtual void end_exchange(bool keep_alive) = 0;
  virtual void close() = 0;
  virtual RequestRecord& record() = 0;
  virtual const std::string& request_id() = 0;
  virtual const std::string& client_address() const = 0;

protected:
  ~RelayHost() = default;
};

// One connection's relay to Exchange, one request at a time (Envoy's router filter plays this part). What it
// holds between requests is small: the response parser, the heads' bytes and the relay buffer live on the heap
// only while used.
class Relay {
public:
  Relay(RelayHost& host, ThreadContext& context, const std::shared_ptr<const Runtime>& runtime,
        auth::TlsStream& client, ReadBuffer& client_buffer);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Sends the admitted request whose head `request` has read upstream. Both must stay valid (and `request`
  // unchanged but for its body) until the host is told the exchange is done, refused or closed.
  void forward(RequestParser& request, AdmissionOutcome& verdict);
  // The host's timer fired in one of the relay's phases (delegating, upstream_connect, request_body,
  // upstream_response).
  void on_timeout(Phase phase);
  // The connection closes: pending upstream operations end with an error.
  void close();
  // The request is over (answered or refused): its server no longer counts it as active.
  void release_server();
  // The connection is idle: give back what only an exchange needs.
  void release_idle_memory();
  // The relay buffer (limits.relay_buffer_bytes), taken from the thread's pool on first use.
  char* buffer();

private:
  using ResponseParser = ParserWithArena<ResponseHeadParser<http::buffer_body>>;  // one allocation per answer

  std::shared_ptr<Relay> self();

  void choose_upstream();
  void obtain_kerberos_token();  // for the chosen server's SPN
  void on_kerberos_token(const auth::kerberos::TokenResult& result);
  void send_upstream();
  void do_connect_upstream();
  void do_connect_endpoint();
  void on_connect_upstream(error_code ec);
  void on_upstream_handshake(error_code ec);
  void upstream_connect_failed(error_code ec, const char* stage);
  const UpstreamServer& upstream_server() const;
  const std::string& upstream_url() const;

  // A reused connection is checked by the answer's first read, started before the request goes out.
  void send_after_liveness_read();
  void on_reused_connection_unusable(error_code ec);

  void start_upstream_request();
  void send_request();  // the head with the body, or after 100 Continue
  void do_send_continue();
  void do_read_request_body();
  void on_read_request_body(error_code ec, std::size_t bytes);
  // Sends the next `size` bytes of the device's body (after the head, the first time), framed as forwarded.
  void do_write_upstream(const char* data, std::size_t size, bool last);
  void on_write_upstream(error_code ec, bool last);

  void do_wait_response();
  void park_response_wait();
  void watch_client();
  void on_client_activity(error_code ec);
  void stop_watching_client();
  void on_response_readable(error_code ec);
  void do_read_response_header();
  void continue_read_response_header();
  void on_response_head_bytes(error_code ec);
  void on_read_response_header(error_code ec);
  void relay_response_header();
  void do_read_response_body();
  void on_read_response_body(error_code ec, std::size_t bytes);
  // Sends the next `size` bytes of Exchange's body (after the head, the first time), framed for the device.
  void do_write_response(const char* data, std::size_t size, bool last);
  void on_write_response(error_code ec, std::size_t bytes, bool last);
  void finish_exchange();

  void upstream_failed(error_code ec, const char* stage);
  // Refuses after dropping the upstream connection, which is spoiled (part of an exchange happened on it).
  void refuse_dropping_upstream(Refusal reason, std::string detail);
  void release_buffer();
  void release_held();

  RelayHost& host_;
  ThreadContext& context_;
  const std::shared_ptr<const Runtime>& runtime_;  // the connection's
  auth::TlsStream& client_;
  ReadBuffer& client_buffer_;

  // The exchange under way (set by forward()).
  RequestParser* request_ = nullptr;
  AdmissionOutcome* verdict_ = nullptr;
  OutgoingHead forwarded_;  // what goes upstream: built from the parse, never the device's bytes
  OutgoingBody forwarded_body_;
  bool forwarded_head_sent_ = false;
  bool request_body_started_ = false;
  bool response_started_ = false;
  bool device_head_sent_ = false;
  bool upstream_reused_ = false;
  bool held_ = false;              // counted in easedge_requests_held
  bool watching_client_ = false;   // waiting on the device's socket while Exchange holds the request
  bool watch_client_due_ = false;  // start watching if Exchange still holds the request at the deadline
  bool parking_ = false;           // the response read was cancelled to wait without its buffer
  // The answer's read on a reused connection, started before the request goes out: `checking` until the
  // posted send runs (a completion means the connection is unusable), `pending` until the request's head
  // (and any body) went out, `completed` when the answer came before that (early_read_result_ waits for
  // do_wait_response).
  enum class EarlyRead { none, checking, pending, completed };
  EarlyRead early_read_ = EarlyRead::none;
  error_code early_read_result_;
  std::uint64_t send_serial_ = 0;  // a posted send for a connection found unusable meanwhile is dropped

  std::optional<std::size_t> upstream_server_;  // index into runtime_->upstreams, counted active there
  UpstreamServers::Tried servers_tried_ = 0;     // servers this request tried (a failed connect moves on)
  std::uint64_t token_serial_ = 0;               // a KDC answer for an earlier ask (timed out) is dropped
  std::size_t connect_endpoint_ = 0;             // which of the server's resolved addresses is being tried
  std::optional<boost::asio::ip::tcp::socket> connecting_;
  std::optional<auth::TlsStream> upstream_;
  DeliveryMark reused_mark_;  // taken before a request goes out on a reused connection
  std::chrono::steady_clock::time_point upstream_sent_;
  ReadBuffer upstream_buffer_;
  // Bytes of the response head being read: Beast's header_limit bounds one read, not the head.
  std::size_t head_bytes_ = 0;
  std::unique_ptr<ResponseParser> response_;
  OutgoingHead device_response_;  // what the device gets: built from the upstream's parse
  OutgoingBody device_body_;
  std::unique_ptr<char[]> buffer_;
};

}  // namespace easedge::proxy
