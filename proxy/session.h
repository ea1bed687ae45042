// One device connection: TLS handshake, then each request is read, authorised and relayed to Exchange
// with bodies streamed in both directions (never a whole body in memory).
#pragma once

#include "auth/client_certificate.h"
#include "auth/tls_stream.h"
#include "proxy/admission.h"
#include "proxy/forwarded_headers.h"
#include "proxy/read_buffer.h"
#include "proxy/refusal.h"
#include "proxy/relay.h"
#include "proxy/request_record.h"
#include "proxy/runtime.h"
#include "proxy/thread_context.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace easedge::proxy {

class Session final : public std::enable_shared_from_this<Session>, private RelayHost {
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
  void do_read_proxy_header(std::string consumed);
  void on_proxy_header_readable(error_code ec, std::string consumed);
  void do_handshake();
  void on_handshake(error_code ec);

  void do_wait_request();
  void on_request_readable(error_code ec);
  void do_read_header();
  void continue_read_header();
  void on_read_header(error_code ec, std::size_t bytes);

  void process_request();
  void on_admission(AdmissionOutcome&& outcome);

  // What the relay (proxy/relay.h) asks of the connection.
  std::shared_ptr<void> owner() override;
  // Sets the current phase and its deadline. The timer is re-armed only when the deadline moves earlier than
  // the pending wait: most phase changes move it later and cost no timer operation (the wait fires early
  // and waits again).
  void arm(std::chrono::steady_clock::duration timeout, Phase phase) override;
  bool timed_out() const override { return timed_out_; }
  bool closed() const override { return closed_; }
  bool device_keeps_alive() const override { return client_keep_alive_ && !closing(); }
  void refuse(Refusal reason, std::string detail) override;
  void end_exchange(bool keep_alive) override;
  void close() override;
  RequestRecord& record() override { return request_->record; }
  // The current request's id, drawn on first use: it is in a refusal's body and X-Request-Id, in the access
  // and error log lines, and can go upstream with a forwarded request.
  const std::string& request_id() override;
  const std::string& client_address() const override { return client_address_; }

  void on_refusal_written(error_code ec, bool close_after);
  void do_linger();
  void do_linger_read();
  void on_linger_read(error_code ec, std::size_t bytes);
  void finish_request();
  // No keep-alive after the current answer: this session or the whole server is draining.
  bool closing() const;

  void start_timer();
  void on_timer();
  void on_timeout();
  void release_idle_memory();

  ThreadContext& context_;
  std::shared_ptr<const Runtime> runtime_;
  auth::TlsStream client_;
  std::string client_address_;
  boost::asio::steady_timer timer_;
  std::uint64_t timer_generation_ = 0;  // tells the pending wait from superseded ones
  std::chrono::steady_clock::time_point deadline_;  // of phase_
  std::uint64_t request_serial_ = 0;   // requests begun on this connection
  Phase phase_ = Phase::handshake;
  bool timer_waiting_ = false;
  bool timed_out_ = false;
  bool proxy_protocol_ = false;
  bool draining_ = false;
  bool closed_ = false;
  bool client_keep_alive_ = false;

  std::shared_ptr<const auth::ClientCertificate> certificate_;
  std::optional<Admission> admission_;  // from the handshake on
  std::string server_address_;
  std::uint16_t server_port_ = 0;
  std::uint16_t client_port_ = 0;

  ReadBuffer client_buffer_;
  // What one request needs, on the heap from its first byte until the connection waits for the next one: an
  // idle connection does not carry it inline (2 KB with the parser and its head, each of thousands).
  struct Request : ParserWithArena<RequestParser> {  // `parser`, its head in the same allocation
    Request() {}  // not `= default`: see ParserWithArena
    AdmissionOutcome verdict;  // framing, ActiveSync facts, identity
    RequestRecord record;
  };
  std::unique_ptr<Request> request_;
  Relay relay_;  // the way to Exchange and back

  std::size_t lingered_bytes_ = 0;
  // Bytes of the request head being read: Beast's header_limit bounds one read, not the head.
  std::size_t head_bytes_ = 0;
  std::unique_ptr<http::response<http::string_body>> refusal_;
};

}  // namespace easedge::proxy
