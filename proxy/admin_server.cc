// Beast HTTP/1.1 server for the admin endpoints: one small session per connection, keep-alive, bounded reads.
#include "proxy/admin_server.h"

#include "auth/revocation/revocation_checker.h"

#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

namespace easedge::proxy {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

// Admin requests are a GET line and a few headers; anything larger is not a monitoring system.
constexpr std::uint32_t admin_header_limit = 8192;

class AdminSession : public std::enable_shared_from_this<AdminSession> {
public:
  AdminSession(tcp::socket socket, std::shared_ptr<const AdminServer> server, std::chrono::seconds timeout)
      : stream_(std::move(socket)), server_(std::move(server)), timeout_(timeout) {}

  void read() {
    parser_.emplace();
    parser_->header_limit(admin_header_limit);
    parser_->body_limit(0);
    stream_.expires_after(timeout_);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

private:
  void on_read(beast::error_code ec) {
    if (ec) return close();
    const auto& request = parser_->get();
    response_ = {};
    response_.version(request.version());
    response_.keep_alive(request.keep_alive());
    response_.set(http::field::server, "easedge-admin");
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      response_.result(http::status::method_not_allowed);
      response_.set(http::field::allow, "GET, HEAD");
      response_.set(http::field::content_type, "text/plain; charset=utf-8");
      response_.body() = "method not allowed\n";
    } else {
      auto answer = server_->answer(request.target());
      response_.result(answer.status);
      response_.set(http::field::content_type, answer.content_type);
      response_.set(http::field::cache_control, "no-store");
      response_.body() = std::move(answer.body);
    }
    response_.prepare_payload();
    if (request.method() == http::verb::head) response_.body().clear();  // Content-Length stays
    stream_.expires_after(timeout_);
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || !self->response_.keep_alive()) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<const AdminServer> server_;
  std::chrono::seconds timeout_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  http::response<http::string_body> response_;
};

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

AdminServer::AdminServer(boost::asio::io_context& io, const MetricsRegistry& metrics, ReadinessProbe readiness,
                         std::chrono::seconds request_timeout)
    : acceptor_(io), metrics_(metrics), readiness_(std::move(readiness)), request_timeout_(request_timeout) {}

std::shared_ptr<AdminServer> AdminServer::create(boost::asio::io_context& io, const config::AdminConfig& admin,
                                                 const MetricsRegistry& metrics, ReadinessProbe readiness,
                                                 std::chrono::seconds request_timeout) {
  std::shared_ptr<AdminServer> server(new AdminServer(io, metrics, std::move(readiness), request_timeout));
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
  return {404, text, "not found (try /healthz, /readyz, /metrics)\n"};
}

}  // namespace easedge::proxy
