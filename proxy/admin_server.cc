// Beast HTTP/1.1 server for the admin endpoints: one small session per connection (TLS by auth::TlsStream when
// admin.certificate is set), keep-alive, bounded handshake and reads, admin.auth checked per request.
#include "proxy/admin_server.h"

#include "auth/revocation/revocation_checker.h"
#include "auth/tls_context.h"
#include "auth/tls_stream.h"
#include "proxy/endpoint_text.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/x509_vfy.h>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <array>

namespace easedge::proxy {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

// Admin requests are a GET line and a few headers; anything larger is not a monitoring system.
constexpr std::uint32_t admin_header_limit = 8192;
// What a closing connection may still send (a refused body) before it is cut.
constexpr std::size_t admin_linger_bytes = 1024 * 1024;

// Sent with every admin answer: the console's pages load only their own scripts and styles, never inline code,
// so a device-controlled string that slipped into markup still could not run.
constexpr const char* content_security_policy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

// The three routes every monitoring system reads: open whatever admin.auth says, as they have always been.
bool is_probe(std::string_view path) { return path == "/healthz" || path == "/readyz" || path == "/metrics"; }

// The verify errors admin.crl causes: the certificate is revoked, or its issuer has no CRL there that is current.
bool is_revocation_problem(long verify_result) {
  switch (verify_result) {
    case X509_V_ERR_CERT_REVOKED:
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
      return true;
    default:
      return false;
  }
}

class AdminSession : public std::enable_shared_from_this<AdminSession> {
public:
  AdminSession(tcp::socket socket, std::shared_ptr<const AdminServer> server, SSL_CTX* tls)
      : client_(client_of(socket)),
        stream_(tls != nullptr ? auth::TlsStream(std::move(socket), auth::make_server_ssl(tls))
                               : auth::TlsStream(std::move(socket))),
        timer_(stream_.get_executor()),
        server_(std::move(server)) {}

  void start() {
    if (!stream_.is_tls()) return read();
    arm(server_->timeouts().handshake);
    stream_.async_handshake([self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_handshake(ec); });
  }

private:
  static std::string client_of(const tcp::socket& socket) {
    beast::error_code ec;
    auto endpoint = socket.remote_endpoint(ec);
    return ec ? "unknown" : endpoint_text(endpoint);
  }

  // A handshake that fails (plain HTTP on the HTTPS port, a scanner, a client that gave up) or times out ends
  // the connection; the listener goes on accepting.
  void on_handshake(beast::error_code ec) {
    timer_.cancel();
    if (ec) {
      spdlog::info("admin: TLS handshake from {} failed: {}", client_, timed_out_ ? "timed out" : ec.message());
      return close(true);
    }
    SSL* ssl = stream_.ssl();
    if (X509* peer = SSL_get0_peer_certificate(ssl)) {
      operator_.presented = true;
      operator_.subject = auth::rfc2253(X509_get_subject_name(peer));
      const long result = SSL_get_verify_result(ssl);
      operator_.verified = result == X509_V_OK;
      if (!operator_.verified) operator_.problem = X509_verify_cert_error_string(result);
      operator_.revocation_problem = is_revocation_problem(result);
    }
    read();
  }

  void read() {
    parser_.emplace();
    parser_->header_limit(admin_header_limit);
    parser_->body_limit(server_->body_limit());
    arm(server_->timeouts().request_header);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    timer_.cancel();
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      return reply({413, text, "request body too large (admin.explain_max_bytes)\n"}, false);
    }
    if (ec) return close(ec != http::error::end_of_stream && ec != boost::asio::error::eof);
    const auto& request = parser_->get();
    keep_alive_ = request.keep_alive();
    const auto method = request.method();
    const bool head = method == http::verb::head;
    if (method != http::verb::get && !head && method != http::verb::post)
      return reply({405, text, "method not allowed\n"}, false);
    const auto target = request.target();
    const auto path = target.substr(0, target.find('?'));
    if (auto refused = server_->refusal(path, request[http::field::authorization], operator_)) {
      if (!logged_) {
        logged_ = true;
        spdlog::info("admin: refused {} {} from {}: {}", request.method_string(), path, client_, trimmed(*refused));
      }
      if (server_->auth() == config::AdminAuth::token)
        response_.set(http::field::www_authenticate, "Bearer realm=\"easedge-admin\"");
      // No WWW-Authenticate for a certificate: HTTP has no scheme for it; the browser must reconnect with one.
      return reply({401, text, std::move(*refused)}, head);
    }
    if (!logged_ && !is_probe(path)) {
      // Who used the console: once per connection (a page polls its API every few seconds on one connection).
      logged_ = true;
      spdlog::info("admin: {} {} from {}{}", request.method_string(), path, client_,
                   operator_.verified ? " by " + operator_.subject : "");
    }
    const AdminRequest routed{request.method_string(), target, request.body()};
    auto done = [self = shared_from_this(), head](AdminAnswer answer) {
      boost::asio::post(self->stream_.get_executor(),
                        [self, head, answer = std::move(answer)]() mutable { self->reply(std::move(answer), head); });
    };
    if (server_->routes() && server_->routes()(routed, std::move(done))) return;
    if (method == http::verb::post) return reply({405, text, "method not allowed\n"}, false);
    reply(server_->answer(target), head);
  }

  void reply(AdminAnswer answer, bool head) {
    response_.version(11);
    response_.keep_alive(keep_alive_);
    response_.set(http::field::server, "easedge-admin");
    response_.result(answer.status);
    if (answer.status == 405) response_.set(http::field::allow, "GET, HEAD, POST");
    response_.set(http::field::content_type, answer.content_type);
    response_.set(http::field::cache_control, "no-store");
    response_.set("Content-Security-Policy", content_security_policy);
    response_.set("X-Content-Type-Options", "nosniff");
    response_.set("Referrer-Policy", "no-referrer");
    response_.body() = std::move(answer.body);
    response_.prepare_payload();
    if (head) response_.body().clear();  // Content-Length stays
    arm(server_->timeouts().request_header);
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->timer_.cancel();
      bool keep_alive = self->response_.keep_alive();
      self->response_ = {};
      if (ec) return self->close(true);
      if (!keep_alive) return self->linger();
      self->read();
    });
  }

  // Half-closes (close_notify first with TLS), then discards what the client still sends (the rest of a refused
  // body) for a moment, so it reads the answer instead of a reset.
  void linger() {
    stream_.shutdown_send();
    discard();
  }

  void discard() {
    if (lingered_ > admin_linger_bytes) return close(true);
    arm(server_->timeouts().request_header);
    stream_.async_read_some(boost::asio::buffer(discard_), [self = shared_from_this()](beast::error_code ec,
                                                                                        std::size_t bytes) {
      self->timer_.cancel();
      self->lingered_ += bytes;
      if (ec) return self->close(true);
      self->discard();
    });
  }

  // `quiet`: no close_notify, after a failure (a TLS error, a timeout: as nginx, a broken or silent peer gets
  // nothing more written to it) or when linger() already sent one.
  void close(bool quiet) {
    if (quiet && stream_.ssl() != nullptr) SSL_set_quiet_shutdown(stream_.ssl(), 1);
    stream_.close();
  }

  // Cancels the pending operation when `limit` passes; it then completes with operation_aborted and closes.
  void arm(std::chrono::seconds limit) {
    timer_.expires_after(limit);
    timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) {
        self->timed_out_ = true;
        self->stream_.cancel();
      }
    });
  }

  static std::string_view trimmed(std::string_view line) { return line.substr(0, line.find_last_not_of('\n') + 1); }

  static constexpr const char* text = "text/plain; charset=utf-8";
  std::string client_;
  auth::TlsStream stream_;
  boost::asio::steady_timer timer_;
  std::shared_ptr<const AdminServer> server_;
  OperatorCertificate operator_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  bool keep_alive_ = false;
  bool timed_out_ = false;
  bool logged_ = false;
  std::size_t lingered_ = 0;
  std::array<char, 4096> discard_;
};

// SHA-256 of a credential: comparing digests takes the same time whatever the length and content of a guess.
std::array<unsigned char, SHA256_DIGEST_LENGTH> digest_of(std::string_view text) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> out{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
  return out;
}

}  // namespace

ReadinessCheck revocation_readiness(const auth::RevocationChecker& checker) {
  auto problems = checker.stale(std::chrono::system_clock::now());
  ReadinessCheck check{"revocation", problems.empty(), {}};
  for (const auto& p : problems) check.detail += (check.detail.empty() ? "" : "; ") + p;
  return check;
}

AdminServer::AdminServer(boost::asio::io_context& io, const config::AdminConfig& admin, const MetricsRegistry& metrics,
                         ReadinessProbe readiness, const config::TimeoutsConfig& timeouts, AdminRoutes routes,
                         std::shared_ptr<SSL_CTX> tls)
    : acceptor_(io),
      admin_(admin),
      metrics_(metrics),
      readiness_(std::move(readiness)),
      timeouts_(timeouts),
      routes_(std::move(routes)),
      tls_(std::move(tls)) {}

std::shared_ptr<AdminServer> AdminServer::create(boost::asio::io_context& io, const config::AdminConfig& admin,
                                                 const MetricsRegistry& metrics, ReadinessProbe readiness,
                                                 const config::TimeoutsConfig& timeouts, AdminRoutes routes,
                                                 std::shared_ptr<SSL_CTX> tls) {
  std::shared_ptr<AdminServer> server(
      new AdminServer(io, admin, metrics, std::move(readiness), timeouts, std::move(routes), std::move(tls)));
  try {
    tcp::resolver resolver(io);
    auto results = resolver.resolve(admin.host, std::to_string(admin.port),
                                    tcp::resolver::numeric_service | tcp::resolver::passive);
    const tcp::endpoint endpoint = *results.begin();
    server->acceptor_.open(endpoint.protocol());
    server->acceptor_.set_option(tcp::acceptor::reuse_address(true));
    server->acceptor_.bind(endpoint);
    server->acceptor_.listen();
    server->endpoint_ = server->acceptor_.local_endpoint();
  } catch (const boost::system::system_error& e) {
    throw config::ConfigError({}, "admin.listen",
                              "cannot listen on " + admin.host + ":" + std::to_string(admin.port) + ": " +
                                  e.code().message());
  }
  return server;
}

void AdminServer::start() {
  spdlog::info("admin listening on {}{}", endpoint_text(endpoint_), tls_ ? " (HTTPS)" : "");
  boost::asio::post(acceptor_.get_executor(), [self = shared_from_this()] { self->accept(); });
}

void AdminServer::stop() {
  boost::asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    beast::error_code ignored;
    self->acceptor_.close(ignored);
  });
}

void AdminServer::use_tls_context(std::shared_ptr<SSL_CTX> tls) {
  boost::asio::post(acceptor_.get_executor(), [self = shared_from_this(), tls = std::move(tls)]() mutable {
    self->tls_ = std::move(tls);
  });
}

void AdminServer::accept() {
  acceptor_.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted || !self->acceptor_.is_open()) return;
    if (!ec) std::make_shared<AdminSession>(std::move(socket), self, self->tls_.get())->start();
    self->accept();
  });
}

bool AdminServer::authorized(std::string_view authorization) const {
  if (admin_.auth == config::AdminAuth::none) return true;
  constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() <= scheme.size() ||
      !boost::beast::iequals(authorization.substr(0, scheme.size()), scheme))
    return false;
  const auto offered = digest_of(authorization.substr(scheme.size()));
  const auto expected = digest_of(admin_.token);
  return CRYPTO_memcmp(offered.data(), expected.data(), offered.size()) == 0;
}

std::optional<std::string> AdminServer::refusal(std::string_view path, std::string_view authorization,
                                                const OperatorCertificate& peer) const {
  if (is_probe(path)) return std::nullopt;
  switch (admin_.auth) {
    case config::AdminAuth::none: return std::nullopt;
    case config::AdminAuth::token:
      if (!path.starts_with("/api/") || authorized(authorization)) return std::nullopt;
      return "unauthorized: send Authorization: Bearer <admin.token_file's token>\n";
    case config::AdminAuth::client_certificate:
      if (peer.verified) return std::nullopt;
      if (!peer.presented)
        return "unauthorized: no client certificate; admin.auth is client_certificate: connect with an operator "
               "certificate issued by a CA in admin.client_ca\n";
      return "unauthorized: the client certificate " + peer.subject +
             (peer.revocation_problem ? " is refused by admin.crl: " : " is not trusted by admin.client_ca: ") +
             peer.problem + "\n";
  }
  return "unauthorized\n";
}

AdminServer::Answer AdminServer::answer(std::string_view target) const {
  const auto path = target.substr(0, target.find('?'));
  static constexpr const char* text = "text/plain; charset=utf-8";
  if (path == "/healthz") return {200, text, "ok\n"};
  if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render()};
  if (path == "/readyz") {
    auto checks = readiness_ ? readiness_() : std::vector<ReadinessCheck>{};
    bool ready = true;
    std::string lines;
    for (const auto& c : checks) {
      ready = ready && c.ok;
      lines += (c.ok ? "ok " : "FAIL ") + c.name + (c.detail.empty() ? "" : ": " + c.detail) + "\n";
    }
    return {ready ? 200u : 503u, text, (ready ? "ready\n" : "not ready\n") + lines};
  }
  return {404, text, "not found (try /, /healthz, /readyz, /metrics)\n"};
}

}  // namespace easedge::proxy
