// Beast HTTP/1.1 server for the admin endpoints: one small session per connection, keep-alive, bounded reads.
#include "proxy/admin_server.h"

#include "auth/revocation/revocation_checker.h"

#include <boost/asio/post.hpp>
#include <openssl/crypto.h>
#include <openssl/sha.h>
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

class AdminSession : public std::enable_shared_from_this<AdminSession> {
public:
  AdminSession(tcp::socket socket, std::shared_ptr<const AdminServer> server, std::chrono::seconds timeout)
      : stream_(std::move(socket)), server_(std::move(server)), timeout_(timeout) {}

  void read() {
    parser_.emplace();
    parser_->header_limit(admin_header_limit);
    parser_->body_limit(server_->body_limit());
    stream_.expires_after(timeout_);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

private:
  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      return reply({413, text, "request body too large (admin.explain_max_bytes)\n"}, false);
    }
    if (ec) return close();
    const auto& request = parser_->get();
    keep_alive_ = request.keep_alive();
    const auto method = request.method();
    const bool head = method == http::verb::head;
    if (method != http::verb::get && !head && method != http::verb::post)
      return reply({405, text, "method not allowed\n"}, false);
    const auto target = request.target();
    const auto path = target.substr(0, target.find('?'));
    if (path.starts_with("/api/") && !server_->authorized(request[http::field::authorization])) {
      response_.set(http::field::www_authenticate, "Bearer realm=\"easedge-admin\"");
      return reply({401, text, "unauthorized: send Authorization: Bearer <admin.token_file's token>\n"}, head);
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
    stream_.expires_after(timeout_);
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      bool keep_alive = self->response_.keep_alive();
      self->response_ = {};
      if (ec || !keep_alive) return self->linger();
      self->read();
    });
  }

  // Half-closes, then discards what the client still sends (the rest of a refused body) for a moment, so it
  // reads the answer instead of a reset.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (lingered_ > admin_linger_bytes) return close();
    stream_.expires_after(timeout_);
    stream_.async_read_some(boost::asio::buffer(discard_), [self = shared_from_this()](beast::error_code ec,
                                                                                       std::size_t bytes) {
      self->lingered_ += bytes;
      if (ec) return self->close();
      self->linger();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  static constexpr const char* text = "text/plain; charset=utf-8";
  beast::tcp_stream stream_;
  std::shared_ptr<const AdminServer> server_;
  std::chrono::seconds timeout_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  bool keep_alive_ = false;
  std::size_t lingered_ = 0;
  std::array<char, 4096> discard_;
};

// SHA-256 of a credential: comparing digests takes the same time whatever the length and content of a guess.
std::array<unsigned char, SHA256_DIGEST_LENGTH> digest_of(std::string_view text) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> out{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
  return out;
}

std::string format_endpoint(const tcp::endpoint& endpoint) {
  auto address = endpoint.address().to_string();
  if (endpoint.address().is_v6()) address = "[" + address + "]";
  return address + ":" + std::to_string(endpoint.port());
}

}  // namespace

ReadinessCheck revocation_readiness(const auth::RevocationChecker& checker) {
  auto problems = checker.stale(std::chrono::system_clock::now());
  ReadinessCheck check{"revocation", problems.empty(), {}};
  for (const auto& p : problems) check.detail += (check.detail.empty() ? "" : "; ") + p;
  return check;
}

AdminServer::AdminServer(boost::asio::io_context& io, const config::AdminConfig& admin, const MetricsRegistry& metrics,
                         ReadinessProbe readiness, std::chrono::seconds request_timeout, AdminRoutes routes)
    : acceptor_(io),
      admin_(admin),
      metrics_(metrics),
      readiness_(std::move(readiness)),
      request_timeout_(request_timeout),
      routes_(std::move(routes)) {}

std::shared_ptr<AdminServer> AdminServer::create(boost::asio::io_context& io, const config::AdminConfig& admin,
                                                 const MetricsRegistry& metrics, ReadinessProbe readiness,
                                                 std::chrono::seconds request_timeout, AdminRoutes routes) {
  std::shared_ptr<AdminServer> server(
      new AdminServer(io, admin, metrics, std::move(readiness), request_timeout, std::move(routes)));
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
  spdlog::info("admin listening on {}", format_endpoint(endpoint_));
  boost::asio::post(acceptor_.get_executor(), [self = shared_from_this()] { self->accept(); });
}

void AdminServer::stop() {
  boost::asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    beast::error_code ignored;
    self->acceptor_.close(ignored);
  });
}

void AdminServer::accept() {
  acceptor_.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted || !self->acceptor_.is_open()) return;
    if (!ec) std::make_shared<AdminSession>(std::move(socket), self, self->request_timeout_)->read();
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
