// One device connection: TLS handshake, then each request is read, authorised and relayed to Exchange
// with bodies streamed in both directions (never a whole body in memory).
#pragma once

#include "auth/client_certificate.h"
#include "auth/kerberos/delegator.h"
#include "auth/revocation/revocation_checker.h"
#include "auth/tls_stream.h"
#include "eas/query.h"
#include "mapping/account_mapper.h"
#include "proxy/forwarded_headers.h"
#include "proxy/refusal.h"
#include "proxy/runtime.h"

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

class Worker;
using boost::beast::error_code;

class Session : public std::enable_shared_from_this<Session> {
public:
  Session(Worker& worker, boost::asio::ip::tcp::socket socket, std::shared_ptr<const Runtime> runtime,
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
  std::optional<Refusal> check_certificate(std::string& detail);
  void check_revocation();
  void on_revocation(std::uint64_t generation, const auth::RevocationAnswer& answer);
  void check_eas_query();
  void map_identity();
  void on_mapped(const mapping::MapResult& result);
  void on_identity(const std::optional<mapping::MappedAccount>& account);
  void obtain_kerberos_token();
  void on_kerberos_token(const auth::kerberos::TokenResult& result);

  void forward();
  // Issue 14, several servers: the choice, a retry on another server after a failed connect, the bookkeeping.
  void choose_upstream();
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
  // Arms the timer for an asynchronous authorization step; IF_LATE is the answer when it does not finish.
  void arm_authorization(Refusal if_late);
  bool still_authorizing(std::uint64_t serial) const;
  char* relay_buffer();
  void release_relay_buffer();
  void release_held();
  std::string_view command_label() const;
  void release_idle_memory();

  Worker& worker_;
  std::shared_ptr<const Runtime> runtime_;
  auth::TlsStream client_;
  std::string client_address_;
  boost::asio::steady_timer timer_;
  std::uint64_t timer_generation_ = 0;  // tells the pending wait from superseded ones
  bool timer_waiting_ = false;
  std::chrono::steady_clock::time_point deadline_;  // of phase_
  Phase phase_ = Phase::handshake;
  bool timed_out_ = false;
  std::uint64_t request_serial_ = 0;   // tells answers for this request from late ones for an earlier step
  Refusal authorization_timeout_refusal_ = Refusal::directory_unavailable;
  bool proxy_protocol_ = false;
  std::string proxy_header_;      // PROXY protocol bytes consumed so far (before TLS)
  bool held_ = false;             // counted in easedge_requests_held
  bool watching_client_ = false;  // waiting on the device's socket while Exchange holds the request
  bool watch_client_due_ = false; // start watching if Exchange still holds the request at the deadline
  std::chrono::steady_clock::time_point upstream_sent_;
  bool draining_ = false;
  bool closed_ = false;

  std::shared_ptr<const auth::ClientCertificate> certificate_;
  // Revocation data generation under which this connection's certificate was last found good.
  std::uint64_t revocation_checked_generation_ = 0;
  bool revocation_checked_ = false;
  std::string server_address_;
  std::uint16_t server_port_ = 0;
  std::uint16_t client_port_ = 0;

  boost::beast::flat_buffer client_buffer_;
  // Parsers, serializers and the refusal live on the heap only while a request uses them: an idle or held
  // connection should not carry ~1.5 KB of them inline.
  std::unique_ptr<request_parser> request_;
  Framing request_framing_;                     // the body length easedge read from the device's head
  std::unique_ptr<ForwardedRequest> forwarded_; // what goes upstream: built from the parse, never the bytes
  std::unique_ptr<http::request_serializer<http::buffer_body>> request_writer_;
  bool expect_continue_ = false;
  bool client_keep_alive_ = false;
  bool request_body_started_ = false;
  eas::EasRequest eas_;                        // what the query says (empty for non-ActiveSync requests)
  std::string eas_error_;                      // why the query is malformed; refused after the certificate checks
  std::chrono::seconds upstream_timeout_{0};   // this request's wait for Exchange (Ping is held long)

  std::optional<std::size_t> upstream_server_;  // index into runtime_->upstreams, counted active there
  UpstreamServers::Tried servers_tried_ = 0;     // servers this request tried (a failed connect moves on)
  std::size_t connect_endpoint_ = 0;             // which of the server's resolved addresses is being tried
  std::optional<boost::asio::ip::tcp::socket> connecting_;
  std::optional<auth::TlsStream> upstream_;
  bool upstream_reused_ = false;
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
  ForwardedIdentity identity_;
  RequestRecord record_;
};

}  // namespace easedge::proxy
