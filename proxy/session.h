// One device connection: TLS handshake, then each request is read, authorised and relayed to Exchange
// with bodies streamed in both directions (never a whole body in memory).
#pragma once

#include "auth/client_certificate.h"
#include "auth/tls_stream.h"
#include "proxy/admission.h"
#include "proxy/forwarded_headers.h"
#include "proxy/refusal.h"
#include "proxy/runtime.h"
#include "proxy/thread_context.h"
#include "proxy/upstream_pool.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace easedge::proxy {

using boost::beast::error_code;

class Session : public std::enable_shared_from_this<Session> {
public:
  Session(ThreadContext& context, boost::asio::ip::tcp::socket socket, std::shared_ptr<const Runtime> runtime,
          bool proxy_protocol);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start();
  // The server is draining: an idle connection closes now, a busy one after its current request.
  void drain();

private:
  using request_parser = http::request_parser<http::buffer_body>;
  using response_parser = http::response_parser<http::buffer_body>;

  // What the single per-connection timer is guarding right now; decides what a timeout means.
  enum class Phase {
    handshake,
    idle,
    request_header,
    authorizing,
    delegating,  // waiting for the KDC's token for the chosen server
    upstream_connect,
    request_body,
    upstream_response,
    response_body,
    refusing,
    lingering,
  };

  // Per-request facts, collected as they become known, logged once at the end.
  struct RequestRecord {
    std::chrono::steady_clock::time_point started;
    std::string id;        // see request_id(); empty until first used
    std::string method;
    std::string target;
    std::string user;      // the mapped account; empty ('-' in the log) until a certificate maps
    std::uint16_t status = 0;
    std::uint16_t substatus = 0;
    std::uint16_t upstream_status = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::string refusal;   // refusal name, when refused
    std::string detail;    // why, for the log
  };

  void do_read_proxy_header();
  void on_proxy_header_readable(error_code ec);
  void do_handshake();
  void on_handshake(error_code ec);

  void do_wait_request();
  void on_request_readable(error_code ec);
  void do_read_header();
  void continue_read_header();
  void on_read_header(error_code ec, std::size_t bytes);

  void process_request();
  void on_admission(AdmissionOutcome&& outcome);

  void forward();
  // Issue 14, several servers: the choice, a retry on another server after a failed connect, the bookkeeping.
  void choose_upstream();
  void obtain_kerberos_token();  // for the chosen server's SPN
  void on_kerberos_token(const auth::kerberos::TokenResult& result);
  void send_upstream();
  void do_connect_upstream();
  void do_connect_endpoint();
  void on_connect_upstream(error_code ec);
  void on_upstream_handshake(error_code ec);
  void upstream_connect_failed(error_code ec, const char* stage);
  void release_upstream_server();
  const UpstreamServer& upstream_server() const;
  const std::string& upstream_url() const;
  void start_upstream_request();
  void do_send_continue();
  void do_read_request_body();
  void on_read_request_body(error_code ec, std::size_t bytes);
  void do_write_upstream_body();
  void on_write_upstream_body(error_code ec, std::size_t bytes);

  void watch_client();
  void on_client_activity(error_code ec);
  void stop_watching_client();
  void do_wait_response();
  void on_response_readable(error_code ec);
  void do_read_response_header();
  void continue_read_response_header();
  void on_read_response_header(error_code ec);
  void relay_response_header();
  void do_read_response_body();
  void on_read_response_body(error_code ec, std::size_t bytes);
  void do_write_response_body();
  void on_write_response_body(error_code ec, std::size_t bytes);
  void finish_exchange();

  void upstream_failed(error_code ec, const char* stage);
  void refuse(Refusal reason, std::string detail);
  void on_refusal_written(error_code ec, bool close_after);
  void do_linger();
  void do_linger_read();
  void on_linger_read(error_code ec, std::size_t bytes);
  void finish_request();
  void close();
  // No keep-alive after the current answer: this session or the whole server is draining.
  bool closing() const;
  // The current request's id, drawn on first use: it is in a refusal's body and X-Request-Id, in the access
  // and error log lines, and can go upstream with a forwarded request.
  const std::string& request_id();

  // Sets the current phase and its deadline. The timer is re-armed only when the deadline moves earlier than
  // the pending wait: most phase changes move it later and cost no timer operation (the wait fires early
  // and waits again).
  void arm(std::chrono::steady_clock::duration timeout, Phase phase);
  void start_timer();
  void on_timer();
  void on_timeout();
  char* relay_buffer();
  void release_relay_buffer();
  void release_held();
  std::string_view command_label() const;
  void release_idle_memory();

  ThreadContext& context_;
  std::shared_ptr<const Runtime> runtime_;
  auth::TlsStream client_;
  std::string client_address_;
  boost::asio::steady_timer timer_;
  std::uint64_t timer_generation_ = 0;  // tells the pending wait from superseded ones
  bool timer_waiting_ = false;
  std::chrono::steady_clock::time_point deadline_;  // of phase_
  Phase phase_ = Phase::handshake;
  bool timed_out_ = false;
  std::uint64_t request_serial_ = 0;   // requests begun on this connection
  bool proxy_protocol_ = false;
  std::string proxy_header_;      // PROXY protocol bytes consumed so far (before TLS)
  bool held_ = false;             // counted in easedge_requests_held
  bool watching_client_ = false;  // waiting on the device's socket while Exchange holds the request
  bool watch_client_due_ = false; // start watching if Exchange still holds the request at the deadline
  std::chrono::steady_clock::time_point upstream_sent_;
  bool draining_ = false;
  bool closed_ = false;

  std::shared_ptr<const auth::ClientCertificate> certificate_;
  std::optional<Admission> admission_;  // from the handshake on
  std::string server_address_;
  std::uint16_t server_port_ = 0;
  std::uint16_t client_port_ = 0;

  boost::beast::flat_buffer client_buffer_;
  // Parsers, serializers and the refusal live on the heap only while a request uses them: an idle or held
  // connection should not carry ~1.5 KB of them inline.
  std::unique_ptr<request_parser> request_;
  AdmissionOutcome verdict_;                    // of the current request: framing, ActiveSync facts, identity
  std::unique_ptr<ForwardedRequest> forwarded_; // what goes upstream: built from the parse, never the bytes
  std::unique_ptr<http::request_serializer<http::buffer_body>> request_writer_;
  bool client_keep_alive_ = false;
  bool request_body_started_ = false;

  std::optional<std::size_t> upstream_server_;  // index into runtime_->upstreams, counted active there
  UpstreamServers::Tried servers_tried_ = 0;     // servers this request tried (a failed connect moves on)
  std::uint64_t token_serial_ = 0;               // a KDC answer for an earlier ask (timed out) is dropped
  std::size_t connect_endpoint_ = 0;             // which of the server's resolved addresses is being tried
  std::optional<boost::asio::ip::tcp::socket> connecting_;
  std::optional<auth::TlsStream> upstream_;
  bool upstream_reused_ = false;
  DeliveryMark reused_mark_;                   // taken before a request goes out on a reused connection
  boost::beast::flat_buffer upstream_buffer_;
  std::unique_ptr<response_parser> response_;
  std::unique_ptr<DeviceResponse> device_response_;  // what the device gets: built from the upstream's parse
  std::unique_ptr<http::response_serializer<http::buffer_body>> response_writer_;
  bool response_started_ = false;

  std::unique_ptr<char[]> relay_;
  std::size_t lingered_bytes_ = 0;
  // Bytes of the head being read (request or response): Beast's header_limit bounds one read, not the head.
  std::size_t head_bytes_ = 0;
  std::unique_ptr<http::response<http::string_body>> refusal_;
  RequestRecord record_;
};

}  // namespace easedge::proxy
