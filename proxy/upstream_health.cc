// One round of checks per interval: connect (from a source address), TLS for https, GET, read the status line.
#include "proxy/upstream_health.h"

#include "auth/tls_stream.h"

#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <charconv>
#include <functional>
#include <optional>
#include <utility>

namespace easedge::proxy {

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using boost::system::error_code;

// Enough for "HTTP/1.1 200 OK\r\n": only the status line is read.
constexpr std::size_t status_line_bytes = 256;

// One check of one server; kept alive by its handlers, ended by the answer or its timer.
class Check : public std::enable_shared_from_this<Check> {
public:
  using Done = std::function<void(bool healthy, std::string detail)>;

  Check(net::io_context& io, const Runtime& runtime, std::size_t index, Done done)
      : runtime_(runtime), server_((*runtime.upstreams)[index]), socket_(io), timer_(io), done_(std::move(done)) {}

  void start() {
    const auto& check = *runtime_.config.upstream.health_check;
    timer_.expires_after(check.timeout);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec) return;
      self->timed_out_ = true;
      self->stream_ ? self->stream_->close() : self->socket_.close();
    });
    const auto& endpoint = server_.endpoints.front();
    error_code ec;
    socket_.open(endpoint.protocol(), ec);
    if (auto source = runtime_.upstreams->next_source(endpoint); source && !ec) ec = bind_source(socket_, *source);
    if (ec) return finish(false, "cannot open a socket: " + ec.message());
    socket_.async_connect(endpoint, [self = shared_from_this()](error_code ec) { self->on_connect(ec); });
  }

private:
  void on_connect(error_code ec) {
    if (ec) return finish(false, "connect: " + failure(ec));
    if (server_.config.scheme == "https")
      stream_.emplace(std::move(socket_),
                      auth::make_upstream_ssl(runtime_.upstream_context.get(), server_.config.server_name));
    else
      stream_.emplace(std::move(socket_));
    stream_->async_handshake([self = shared_from_this()](error_code ec, std::size_t) { self->on_handshake(ec); });
  }

  void on_handshake(error_code ec) {
    if (ec) return finish(false, "TLS handshake: " + failure(ec));
    request_ = "GET " + runtime_.config.upstream.health_check->path + " HTTP/1.1\r\nHost: " +
               server_.config.server_name + "\r\nUser-Agent: easedge-health-check\r\nConnection: close\r\n\r\n";
    net::async_write(*stream_, net::buffer(request_), [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->finish(false, "sending the request: " + self->failure(ec));
      self->do_read();
    });
  }

  void do_read() {
    stream_->async_read_some(net::buffer(buffer_.data() + read_, buffer_.size() - read_),
                             [self = shared_from_this()](error_code ec, std::size_t bytes) {
                               self->read_ += bytes;
                               self->on_read(ec);
                             });
  }

  void on_read(error_code ec) {
    std::string_view text(buffer_.data(), read_);
    auto end = text.find("\r\n");
    if (end == std::string_view::npos) {
      if (ec || read_ == buffer_.size()) return finish(false, "no status line: " + (ec ? failure(ec) : "too long"));
      return do_read();
    }
    // "HTTP/1.1 200 OK"
    auto line = text.substr(0, end);
    unsigned status = 0;
    auto space = line.find(' ');
    if (line.substr(0, 5) != "HTTP/" || space == std::string_view::npos ||
        std::from_chars(line.data() + space + 1, line.data() + line.size(), status).ec != std::errc{})
      return finish(false, "not an HTTP answer");
    finish(status >= 200 && status < 400, "answered " + std::to_string(status));
  }

  std::string failure(error_code ec) const { return timed_out_ ? "timed out" : ec.message(); }

  void finish(bool healthy, std::string detail) {
    timer_.cancel();
    error_code ignored;
    if (stream_) stream_->close();
    socket_.close(ignored);
    if (done_) std::exchange(done_, nullptr)(healthy, std::move(detail));
  }

  const Runtime& runtime_;
  const UpstreamServer& server_;
  tcp::socket socket_;
  std::optional<auth::TlsStream> stream_;
  net::steady_timer timer_;
  Done done_;
  bool timed_out_ = false;
  std::string request_;
  std::array<char, status_line_bytes> buffer_{};
  std::size_t read_ = 0;
};

}  // namespace

HealthChecker::HealthChecker(std::shared_ptr<const Runtime> runtime) : runtime_(std::move(runtime)) {
  run_round();
  thread_ = std::thread([this] { io_.run(); });
}

HealthChecker::~HealthChecker() {
  io_.stop();
  thread_.join();
}

void HealthChecker::run_round() {
  for (std::size_t i = 0; i < runtime_->upstreams->size(); ++i)
    std::make_shared<Check>(io_, *runtime_, i, [this, i](bool healthy, std::string detail) {
      on_result(i, healthy, detail);
    })->start();
  timer_.expires_after(runtime_->config.upstream.health_check->interval);
  timer_.async_wait([this](error_code ec) {
    if (!ec) run_round();
  });
}

void HealthChecker::on_result(std::size_t server, bool healthy, const std::string& detail) {
  auto& servers = *runtime_->upstreams;
  auto now = UpstreamServers::Clock::now();
  bool was_up = servers.is_up(server, now);
  const auto& url = servers[server].config.url;
  if (healthy) {
    servers.mark_up(server);
    if (!was_up) spdlog::info("upstream {} is up again: health check {}", url, detail);
    return;
  }
  const auto& check = *runtime_->config.upstream.health_check;
  servers.mark_failed(server, now, check.interval + check.timeout);
  if (was_up) spdlog::warn("upstream {} failed its health check ({}): skipped until a check passes", url, detail);
}

}  // namespace easedge::proxy
