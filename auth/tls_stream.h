// A TCP socket with optional TLS run by OpenSSL directly on the file descriptor: a Beast AsyncStream
// that holds no buffers of its own while a connection is idle.
//
// Why not asio::ssl::stream: it keeps two 17 KB record buffers per connection for its whole life, which
// is most of the memory of an idle held Ping. Here OpenSSL reads the socket itself (SSL_set_fd) with
// SSL_MODE_RELEASE_BUFFERS, and Asio only reports readiness (async_wait), as nginx does with epoll.
#pragma once

#include "auth/openssl.h"

#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

namespace easedge::auth {

namespace net = boost::asio;
using boost::beast::error_code;

class TlsStream {
public:
  using socket_type = net::ip::tcp::socket;
  using executor_type = socket_type::executor_type;

  // A plain TCP stream (no TLS).
  explicit TlsStream(socket_type socket) : socket_(std::move(socket)) {}
  // A TLS stream; `ssl` must already be in accept or connect state. Takes ownership.
  TlsStream(socket_type socket, OwnedSsl ssl) : socket_(std::move(socket)), ssl_(std::move(ssl)) {
    socket_.non_blocking(true);
    SSL_set_fd(ssl_.get(), static_cast<int>(socket_.native_handle()));
  }

  TlsStream(TlsStream&&) = default;
  TlsStream& operator=(TlsStream&&) = default;

  executor_type get_executor() { return socket_.get_executor(); }
  socket_type& socket() { return socket_; }
  SSL* ssl() const { return ssl_.get(); }
  bool is_tls() const { return ssl_ != nullptr; }
  bool is_open() const { return socket_.is_open(); }
  // Whether OpenSSL already holds bytes read from the socket (decrypted, or read ahead): waiting on the
  // socket for them would wait for nothing.
  bool holds_unread_bytes() const { return ssl_ && (SSL_pending(ssl_.get()) > 0 || SSL_has_pending(ssl_.get())); }

  // Completes the TLS handshake (no-op for a plain stream).
  template <typename Handler>
  auto async_handshake(Handler&& handler) {
    return run_tls_op(
        [](SSL* ssl, std::size_t& done) {
          done = 0;
          return SSL_do_handshake(ssl);
        },
        std::forward<Handler>(handler));
  }

  template <typename MutableBuffers, typename Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (!ssl_) return socket_.async_read_some(buffers, std::forward<Handler>(handler));
    net::mutable_buffer target = first_non_empty(buffers);
    return run_tls_op(
        [target](SSL* ssl, std::size_t& done) {
          if (target.size() == 0) return 1;
          int rc = SSL_read_ex(ssl, target.data(), target.size(), &done);
          // A full-size record means a bulk transfer (an upload, a big response): take the records that are
          // already readable into the rest of the buffer, one completion per wake-up instead of per 16 KB.
          // A small request stops after its first record, so a Sync pays no extra read().
          std::size_t last = done;
          while (rc == 1 && done < target.size() && (last == SSL3_RT_MAX_PLAIN_LENGTH || SSL_has_pending(ssl))) {
            if (SSL_read_ex(ssl, static_cast<char*>(target.data()) + done, target.size() - done, &last) != 1) {
              clear_openssl_errors();  // WANT_READ, or an error the next read reports again
              break;
            }
            done += last;
          }
          return rc;
        },
        std::forward<Handler>(handler));
  }

  template <typename ConstBuffers, typename Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (!ssl_) return write_plain(buffers, std::forward<Handler>(handler));
    return run_tls_op(
        [buffers](SSL* ssl, std::size_t& done) {
          // Gather small buffer sequences (header + first body bytes) into one TLS record; a retry after
          // WANT_WRITE rebuilds identical bytes, which SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows.
          thread_local std::array<char, 16384> gather;
          std::size_t total = 0;
          std::size_t count = 0;
          net::const_buffer first;
          for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers); ++it) {
            net::const_buffer b(*it);
            if (b.size() == 0) continue;
            if (count++ == 0) first = b;
            if (total + b.size() > gather.size()) break;
            std::memcpy(gather.data() + total, b.data(), b.size());
            total += b.size();
          }
          if (count == 0) {
            done = 0;
            return 1;
          }
          if (count == 1 || total == 0) return SSL_write_ex(ssl, first.data(), first.size(), &done);
          return SSL_write_ex(ssl, gather.data(), total, &done);
        },
        std::forward<Handler>(handler));
  }

  // Bytes handed to the kernel so far: for TLS what OpenSSL wrote to the socket (handshake and records), for a
  // plain stream what its writes wrote.
  std::uint64_t bytes_sent() const { return ssl_ ? BIO_number_written(SSL_get_wbio(ssl_.get())) : plain_bytes_sent_; }

  // Waits until the peer sends something, without holding any read buffer meanwhile.
  // Completes at once when OpenSSL already holds decrypted or undecrypted bytes.
  // The socket's own wait, not a composed operation: every idle connection has one pending, and a composed
  // operation's state and work guard would add about 100 bytes to each.
  template <typename Handler>
  auto async_wait_readable(Handler&& handler) {
    return net::async_initiate<Handler, void(error_code)>(
        [this](auto&& handler) {
          if (holds_unread_bytes())
            return net::post(socket_.get_executor(), net::append(std::move(handler), error_code{}));
          socket_.async_wait(socket_type::wait_read, std::move(handler));
        },
        handler);
  }

  // What a peer that is not expected to send anything is doing, for a connection with nothing to read pending
  // (a held request): peeks without consuming, so a pipelined request stays for the next read.
  enum class PeerState {
    sent_data,       // a whole record (TLS) or bytes (plain): a pipelined request
    partial_record,  // part of a TLS record: wait for the rest
    busy,            // TLS housekeeping wants to write: still there
    gone,            // closed or reset the connection
  };
  PeerState peek_peer() {
    char byte;
    if (!ssl_) {
      error_code ec;
      socket_.non_blocking(true, ec);
      std::size_t n = socket_.receive(net::buffer(&byte, 1), socket_type::message_peek, ec);
      if (ec == net::error::would_block) return PeerState::partial_record;
      return !ec && n > 0 ? PeerState::sent_data : PeerState::gone;
    }
    clear_openssl_errors();
    int n = SSL_peek(ssl_.get(), &byte, 1);
    if (n > 0) return PeerState::sent_data;
    int error = SSL_get_error(ssl_.get(), n);
    clear_openssl_errors();
    if (error == SSL_ERROR_WANT_READ) return PeerState::partial_record;
    if (error == SSL_ERROR_WANT_WRITE) return PeerState::busy;
    return PeerState::gone;
  }

  // Sends close_notify (TLS) and shuts the sending side, leaving the receiving side open: the peer reads the
  // answer and an end of stream instead of a reset while what it still sends is read and dropped.
  void shutdown_send() {
    if (ssl_) SSL_shutdown(ssl_.get());
    error_code ignored;
    socket_.shutdown(socket_type::shutdown_send, ignored);
  }

  // Sends close_notify if it fits without waiting, then closes the socket. Never blocks.
  void close() {
    if (ssl_ && socket_.is_open() && SSL_is_init_finished(ssl_.get())) {
      clear_openssl_errors();
      SSL_shutdown(ssl_.get());
      clear_openssl_errors();
    }
    error_code ignored;
    socket_.shutdown(socket_type::shutdown_both, ignored);
    socket_.close(ignored);
  }

  // Aborts pending operations (they complete with operation_aborted) without closing.
  void cancel() {
    error_code ignored;
    socket_.cancel(ignored);
  }

private:
  template <typename Buffers>
  static net::mutable_buffer first_non_empty(const Buffers& buffers) {
    for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers); ++it) {
      net::mutable_buffer b(*it);
      if (b.size() > 0) return b;
    }
    return {};
  }

  // A plain socket's write, tried at once without blocking and its result delivered as run_tls_op delivers an
  // immediate one: Asio posts even a write that completed at once (a reactor round per request to Exchange).
  // Asio's asynchronous write only when the socket cannot take the bytes now.
  template <typename ConstBuffers, typename Handler>
  auto write_plain(const ConstBuffers& buffers, Handler&& handler) {
    return net::async_initiate<Handler, void(error_code, std::size_t)>(
        [this, buffers](auto&& handler) {
          error_code ec;
          if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
          std::size_t done = ec ? 0 : socket_.write_some(buffers, ec);
          if (ec == net::error::would_block || ec == net::error::try_again)
            return write_plain_when_writable(buffers, std::move(handler));
          plain_bytes_sent_ += done;
          complete_now(std::move(handler), ec, done);
        },
        handler);
  }

  // The rest of write_plain when the socket cannot take the bytes now: Asio's write, counted as it completes.
  template <typename ConstBuffers, typename Handler>
  void write_plain_when_writable(const ConstBuffers& buffers, Handler&& handler) {
    net::async_compose<Handler, void(error_code, std::size_t)>(
        [this, buffers, started = false](auto& self, error_code ec = {}, std::size_t done = 0) mutable {
          if (!std::exchange(started, true)) return socket_.async_write_some(buffers, std::move(self));
          plain_bytes_sent_ += done;
          self.complete(ec, done);
        },
        handler, socket_);
  }

  // Delivers a result available at once: directly up to a small nesting depth (every caller initiates in tail
  // position), posted beyond it, which bounds the stack when many results are immediate in a row.
  template <typename Handler>
  void complete_now(Handler&& handler, error_code ec, std::size_t done) {
    if (inline_completion_depth >= max_inline_completion_depth)
      return net::post(socket_.get_executor(), net::append(std::move(handler), ec, done));
    ++inline_completion_depth;
    std::move(handler)(ec, done);  // may destroy this stream: nothing of it is touched after
    --inline_completion_depth;
  }

  // Runs one OpenSSL call until it succeeds or fails for good, waiting for socket readiness on
  // WANT_READ/WANT_WRITE. A result available at once is delivered directly up to a small nesting depth.
  template <typename Attempt, typename Handler>
  auto run_tls_op(Attempt attempt, Handler&& handler) {
    enum class State { start, waiting, finished };
    return net::async_compose<Handler, void(error_code, std::size_t)>(
        [this, attempt, state = State::start](auto& self, error_code ec = {}, std::size_t done = 0) mutable {
          if (state == State::finished) return self.complete(ec, done);
          if (ec) return self.complete(ec, 0);
          clear_openssl_errors();
          int rc = ssl_ ? attempt(ssl_.get(), done) : 1;  // plain stream: only the handshake gets here
          auto wait_for = socket_type::wait_read;
          if (rc == 1) {
            ec = {};
          } else {
            done = 0;
            switch (SSL_get_error(ssl_.get(), rc)) {
              case SSL_ERROR_WANT_READ:
                state = State::waiting;
                return socket_.async_wait(socket_type::wait_read, std::move(self));
              case SSL_ERROR_WANT_WRITE:
                wait_for = socket_type::wait_write;
                state = State::waiting;
                return socket_.async_wait(wait_for, std::move(self));
              case SSL_ERROR_ZERO_RETURN:
                ec = net::error::eof;
                break;
              case SSL_ERROR_SYSCALL:
                ec = errno != 0 ? error_code(errno, boost::system::system_category()) : error_code(net::error::eof);
                // After a fatal error OpenSSL must not be asked for a shutdown: close() then sends nothing
                // (nginx's no_send_shutdown).
                SSL_set_quiet_shutdown(ssl_.get(), 1);
                break;
              default: {
                SSL_set_quiet_shutdown(ssl_.get(), 1);  // as for SSL_ERROR_SYSCALL
                unsigned long err = ERR_get_error();
                ec = err != 0 ? error_code(static_cast<int>(err), net::error::get_ssl_category())
                              : error_code(net::ssl::error::stream_truncated);
              }
            }
          }
          if (state == State::start) {
            state = State::finished;
            // A result available at once is normally posted, so a handler never runs inside its initiating
            // call; but every post costs the I/O thread a round through the reactor (an epoll_wait(0)), two
            // per keep-alive request. A few nested results are delivered directly instead: every caller
            // (Beast's composed operations, the Session) initiates in tail position. Deeper nesting is posted,
            // which bounds the stack when many records are already buffered. Either way the operation runs
            // again as finished, and completes.
            return complete_now(std::move(self), ec, done);
          }
          self.complete(ec, done);
        },
        handler, socket_);
  }

  static constexpr int max_inline_completion_depth = 4;
  static inline thread_local int inline_completion_depth = 0;

  socket_type socket_;
  OwnedSsl ssl_;
  std::uint64_t plain_bytes_sent_ = 0;
};

}  // namespace easedge::auth
