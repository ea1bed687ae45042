// Beast client for one bounded HTTP exchange: resolve, connect, write, read with a size cap and a deadline.
#include "auth/revocation/http_fetch.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>

#include <memory>

namespace easedge::auth {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

class Exchange : public std::enable_shared_from_this<Exchange> {
public:
  Exchange(boost::asio::io_context& io, HttpFetchRequest request, std::function<void(HttpFetchResult)> done)
      : resolver_(io), stream_(io), resolve_deadline_(io), request_(std::move(request)), done_(std::move(done)) {}

  void start() {
    auto url = boost::urls::parse_uri(request_.url);
    if (!url || url->scheme() != "http" || url->host().empty())
      return finish("not an http:// URL: " + request_.url);
    std::string target = url->encoded_target().empty() ? "/" : std::string(url->encoded_target());
    std::string port = url->has_port() ? std::string(url->port()) : "80";
    std::string host = url->host_type() == boost::urls::host_type::ipv6 ? std::string(url->host_address())
                                                                         : std::string(url->host());
    message_.version(11);
    message_.target(target);
    message_.set(http::field::host, std::string(url->encoded_host_and_port()));
    message_.set(http::field::user_agent, "easedge");
    message_.set(http::field::connection, "close");
    if (request_.post_body.empty()) {
      message_.method(http::verb::get);
    } else {
      message_.method(http::verb::post);
      message_.set(http::field::content_type, request_.content_type);
      message_.body() = request_.post_body;
    }
    message_.prepare_payload();
    parser_.body_limit(request_.max_body_bytes);

    // The stream's own expiry covers connect/write/read; name resolution needs its own timer.
    deadline_ = std::chrono::steady_clock::now() + request_.timeout;
    resolve_deadline_.expires_at(deadline_);
    resolve_deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->resolver_.cancel();
    });
    resolver_.async_resolve(host, port, [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
      self->on_resolve(ec, std::move(r));
    });
  }

private:
  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    resolve_deadline_.cancel();
    if (ec == boost::asio::error::operation_aborted) return finish("resolve: timed out");
    if (ec) return finish("resolve: " + ec.message());
    stream_.expires_at(deadline_);
    stream_.async_connect(results, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
      self->on_connect(ec);
    });
  }

  void on_connect(beast::error_code ec) {
    if (ec) return finish("connect: " + ec.message());
    http::async_write(stream_, message_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_write(ec);
    });
  }

  void on_write(beast::error_code ec) {
    if (ec) return finish("write: " + ec.message());
    http::async_read(stream_, buffer_, parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit)
      return finish("answer larger than " + std::to_string(request_.max_body_bytes) + " bytes");
    if (ec) return finish("read: " + ec.message());
    auto& response = parser_.get();
    if (response.result() != http::status::ok)
      return finish("HTTP " + std::to_string(response.result_int()));
    HttpFetchResult result;
    result.body = std::move(response.body());
    deliver(std::move(result));
  }

  void finish(std::string error) { deliver({std::move(error), {}}); }

  void deliver(HttpFetchResult result) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    auto done = std::move(done_);
    done(std::move(result));
  }

  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  boost::asio::steady_timer resolve_deadline_;
  HttpFetchRequest request_;
  std::function<void(HttpFetchResult)> done_;
  std::chrono::steady_clock::time_point deadline_;
  http::request<http::string_body> message_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

}  // namespace

void http_fetch(boost::asio::io_context& io, HttpFetchRequest request, std::function<void(HttpFetchResult)> done) {
  auto exchange = std::make_shared<Exchange>(io, std::move(request), std::move(done));
  exchange->start();
}

}  // namespace easedge::auth
