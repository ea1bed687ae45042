// standin-exchange: a fast HTTP/1.1 stand-in for Exchange that echoes what the proxy forwarded, as JSON.
//
// Used by the demo, the integration tests and the benchmarks (nginx and HAProxy are measured against it
// too, so it must never be the bottleneck): one io_context per thread, each with its own SO_REUSEPORT
// acceptor on the same port, request bodies hashed while they stream in (never buffered whole).
#include "config/config.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <CLI/CLI.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace easedge::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using beast::error_code;

// Header sizes a real Exchange front end accepts; the proxy enforces its own, smaller limits.
constexpr std::uint32_t header_limit_bytes = 64 * 1024;
constexpr int ping_command_code = 18;  // [MS-ASHTTP] base64 query command code for Ping
constexpr std::string_view protocol_versions = "2.5,12.0,12.1,14.0,14.1,16.0,16.1";
constexpr std::string_view protocol_commands =
    "Sync,SendMail,SmartForward,SmartReply,GetAttachment,GetHierarchy,CreateCollection,DeleteCollection,"
    "MoveCollection,FolderSync,FolderCreate,FolderDelete,FolderUpdate,MoveItems,GetItemEstimate,"
    "MeetingResponse,Search,Settings,Ping,ItemOperations,Provision,ResolveRecipients,ValidateCert,Find";

struct Options {
  std::string listen = "127.0.0.1:8080";
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  unsigned ping_hold_seconds = 0;
  std::string log_file;
  std::size_t response_bytes = 0;
  unsigned idle_timeout_seconds = 300;
};

// A Beast body that keeps only the size and a running SHA-256 of what arrives.
struct HashBody {
  struct value_type {
    std::uint64_t bytes = 0;
    std::string sha256_hex;
  };

  class reader {
  public:
    template <bool is_request, class Fields>
    reader(http::header<is_request, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>&, error_code& ec) { start(ec); }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, error_code& ec) {
      std::size_t total = 0;
      for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
        asio::const_buffer b = *it;
        EVP_DigestUpdate(ctx_.get(), b.data(), b.size());
        total += b.size();
      }
      body_.bytes += total;
      return total;
    }

    // Beast skips init() for a message without a body; finish() still runs.
    void finish(error_code& ec) {
      if (!ctx_ && !start(ec)) return;
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int length = 0;
      EVP_DigestFinal_ex(ctx_.get(), digest, &length);
      static constexpr char hex[] = "0123456789abcdef";
      body_.sha256_hex.clear();
      for (unsigned i = 0; i < length; ++i) {
        body_.sha256_hex += hex[digest[i] >> 4];
        body_.sha256_hex += hex[digest[i] & 15];
      }
    }

  private:
    bool start(error_code& ec) {
      body_.bytes = 0;
      ctx_.reset(EVP_MD_CTX_new());
      if (ctx_ && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1) return true;
      ec = beast::errc::make_error_code(beast::errc::not_enough_memory);
      return false;
    }

    struct CtxFree {
      void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
    };
    value_type& body_;
    std::unique_ptr<EVP_MD_CTX, CtxFree> ctx_;
  };
};

using Request = http::request<HashBody>;

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      // Header bytes are not guaranteed UTF-8: escape them as Latin-1 code points so the JSON stays valid.
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

bool iequals(std::string_view a, std::string_view b) { return beast::iequals(a, b); }

// True for Cmd=Ping in the plain query, or command code 18 in the base64 query form.
bool is_ping(std::string_view target) {
  // A NUL-terminated copy: Boost.URL 1.81 reads views past their end (up to a NUL), past the request line.
  const std::string target_text(target);
  auto parsed = boost::urls::parse_origin_form(target_text);
  if (!parsed || !parsed->has_query()) return false;
  for (auto param : parsed->params()) {
    if (iequals(param.key, "Cmd")) return iequals(param.value, "Ping");
  }
  std::string query = parsed->query();
  std::string decoded(beast::detail::base64::decoded_size(query.size()), '\0');
  auto [written, read] = beast::detail::base64::decode(decoded.data(), query.data(), query.size());
  return read == query.size() && written >= 2 && static_cast<unsigned char>(decoded[1]) == ping_command_code;
}

std::optional<unsigned> header_number(const Request& req, std::string_view name) {
  auto it = req.find(name);
  if (it == req.end()) return std::nullopt;
  auto value = it->value();
  unsigned n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc{} || end != value.data() + value.size()) return std::nullopt;
  return n;
}

// One JSON line per answered request, shared by all threads.
class RequestLog {
public:
  explicit RequestLog(const std::string& path) {
    if (path.empty()) return;
    file_ = std::fopen(path.c_str(), "a");
    if (!file_) throw std::runtime_error("cannot open log file '" + path + "'");
  }
  ~RequestLog() {
    if (file_) std::fclose(file_);
  }
  RequestLog(const RequestLog&) = delete;
  RequestLog& operator=(const RequestLog&) = delete;

  // `peer`: the connection's remote address (which easedge source address it came from).
  void write(const Request& req, unsigned status, const std::string& peer) {
    if (!file_) return;
    auto now = std::chrono::system_clock::now();
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
    std::string line = "{\"ts\":" + std::to_string(micros / 1000000) + "." + pad6(micros % 1000000);
    line += ",\"method\":";
    append_json_string(line, req.method_string());
    line += ",\"target\":";
    append_json_string(line, req.target());
    line += ",\"status\":" + std::to_string(status) + ",\"x_forwarded_user\":";
    auto user = req.find("X-Forwarded-User");
    if (user == req.end())
      line += "null";
    else
      append_json_string(line, user->value());
    line += ",\"body_bytes\":" + std::to_string(req.body().bytes) + ",\"peer\":";
    append_json_string(line, peer);
    line += "}\n";
    std::lock_guard lock(mutex_);
    std::fwrite(line.data(), 1, line.size(), file_);
    std::fflush(file_);
  }

private:
  static std::string pad6(long long v) {
    auto s = std::to_string(v);
    return std::string(6 - std::min<std::size_t>(6, s.size()), '0') + s;
  }
  std::FILE* file_ = nullptr;
  std::mutex mutex_;
};

struct Shared {
  Options options;
  RequestLog log;
  std::string filler;
};

http::response<http::string_body> make_response(const Request& req, const Shared& shared) {
  unsigned status = 200;
  if (auto forced = header_number(req, "X-Standin-Status"); forced && *forced >= 200 && *forced <= 599)
    status = *forced;
  http::response<http::string_body> res{static_cast<http::status>(status), req.version()};
  res.set(http::field::server, "standin-exchange");
  res.set(http::field::content_type, "application/json");
  if (status == 451) res.set("X-MS-Location", "https://mail2.corp.example.test/Microsoft-Server-ActiveSync");
  if (status == 503) res.set(http::field::retry_after, "30");
  if (req.method() == http::verb::options) {
    res.set("MS-Server-ActiveSync", "15.1");
    res.set("MS-ASProtocolVersions", protocol_versions);
    res.set("MS-ASProtocolCommands", protocol_commands);
  }
  if (status != 204 && status != 304) {
    auto& body = res.body();
    body.reserve(512 + shared.filler.size());
    body = "{\"method\":";
    append_json_string(body, req.method_string());
    body += ",\"target\":";
    append_json_string(body, req.target());
    body += ",\"headers\":[";
    bool first = true;
    for (const auto& field : req) {
      body += first ? "[" : ",[";
      first = false;
      append_json_string(body, field.name_string());
      body += ',';
      append_json_string(body, field.value());
      body += ']';
    }
    body += "],\"body_bytes\":" + std::to_string(req.body().bytes) + ",\"body_sha256\":\"" +
            req.body().sha256_hex + "\"";
    if (!shared.filler.empty()) body += ",\"filler\":\"" + shared.filler + "\"";
    body += "}";
  }
  res.keep_alive(req.keep_alive());
  res.prepare_payload();
  return res;
}

// One client connection: read header, (100 Continue), read body, wait if asked, answer, repeat.
class Session : public std::enable_shared_from_this<Session> {
public:
  Session(tcp::socket socket, Shared& shared)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), shared_(shared) {}

  void start() { do_read_header(); }

private:
  void do_read_header() {
    parser_.emplace();
    parser_->header_limit(header_limit_bytes);
    parser_->body_limit(boost::none);  // the proxy in front enforces upload limits, not Exchange
    stream_.expires_after(std::chrono::seconds(shared_.options.idle_timeout_seconds));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_read_header, shared_from_this()));
  }

  void on_read_header(error_code ec, std::size_t) {
    if (ec) return close();
    auto& req = parser_->get();
    auto expect = req.find(http::field::expect);
    if (expect != req.end() && iequals(expect->value(), "100-continue")) {
      continue_.emplace(http::status::continue_, req.version());
      http::async_write(stream_, *continue_, beast::bind_front_handler(&Session::on_continue, shared_from_this()));
      return;
    }
    do_read_body();
  }

  void on_continue(error_code ec, std::size_t) {
    if (ec) return close();
    do_read_body();
  }

  void do_read_body() {
    stream_.expires_after(std::chrono::seconds(shared_.options.idle_timeout_seconds));
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(error_code ec, std::size_t) {
    if (ec) return close();
    const auto& req = parser_->get();
    std::chrono::milliseconds delay{0};
    if (auto ms = header_number(req, "X-Standin-Delay-Ms"))
      delay = std::chrono::milliseconds(*ms);
    else if (shared_.options.ping_hold_seconds > 0 && is_ping(req.target()))
      delay = std::chrono::seconds(shared_.options.ping_hold_seconds);
    if (delay.count() == 0) return do_write();
    timer_.expires_after(delay);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->do_write();
    });
  }

  void do_write() {
    response_ = make_response(parser_->get(), shared_);
    // Logged before the answer leaves, so whoever reads the response can already find its log line.
    shared_.log.write(parser_->get(), response_->result_int(), peer_address());
    stream_.expires_never();
    http::async_write(stream_, *response_, beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(error_code ec, std::size_t) {
    if (ec) return close();
    bool keep_alive = response_->keep_alive();
    response_.reset();
    if (!keep_alive) return close();
    do_read_header();
  }

  std::string peer_address() {
    error_code ec;
    auto peer = stream_.socket().remote_endpoint(ec);
    return ec ? std::string() : peer.address().to_string();
  }

  void close() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<HashBody>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::optional<http::response<http::string_body>> response_;
  Shared& shared_;
};

// Accepts on one thread's own acceptor (all bound to the same port with SO_REUSEPORT).
class Listener : public std::enable_shared_from_this<Listener> {
public:
  Listener(asio::io_context& io, const tcp::endpoint& endpoint, Shared& shared)
      : acceptor_(io), shared_(shared) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  }

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  void start() { do_accept(); }

private:
  void do_accept() {
    acceptor_.async_accept([self = shared_from_this()](error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), self->shared_)->start();
      }
      self->do_accept();
    });
  }

  tcp::acceptor acceptor_;
  Shared& shared_;
};

std::string endpoint_text(const tcp::endpoint& e) {
  auto address = e.address().to_string();
  if (e.address().is_v6()) address = "[" + address + "]";
  return address + ":" + std::to_string(e.port());
}

int run(const Options& options) {
  auto [host, port] = config::parse_host_port(options.listen);
  Shared shared{options, RequestLog(options.log_file), std::string(options.response_bytes, 'x')};

  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::shared_ptr<Listener>> listeners;
  tcp::endpoint endpoint;
  {
    asio::io_context resolver_io;
    tcp::resolver resolver(resolver_io);
    endpoint = *resolver.resolve(host, std::to_string(port), tcp::resolver::numeric_service).begin();
  }
  for (unsigned i = 0; i < options.threads; ++i) {
    contexts.push_back(std::make_unique<asio::io_context>(1));
    listeners.push_back(std::make_shared<Listener>(*contexts.back(), endpoint, shared));
    // Port 0: the first acceptor picks the port, the others join it.
    if (i == 0) endpoint = listeners.front()->local_endpoint();
  }

  asio::signal_set signals(*contexts.front(), SIGINT, SIGTERM);
  signals.async_wait([&](error_code, int) {
    for (auto& io : contexts) io->stop();
  });

  for (auto& listener : listeners) listener->start();
  std::cerr << "standin listening on " << endpoint_text(endpoint) << std::endl;

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < contexts.size(); ++i) threads.emplace_back([&io = *contexts[i]] { io.run(); });
  contexts.front()->run();
  for (auto& io : contexts) io->stop();
  for (auto& t : threads) t.join();
  return 0;
}

}  // namespace
}  // namespace easedge::bench

int main(int argc, char** argv) {
  easedge::bench::Options options;
  CLI::App app{"standin-exchange: a stand-in Exchange ActiveSync server that echoes requests as JSON"};
  app.add_option("--listen", options.listen, "HOST:PORT to listen on (port 0 picks a free port)")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "I/O threads, each with its own SO_REUSEPORT acceptor")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--ping-hold", options.ping_hold_seconds, "seconds a Cmd=Ping request is held before 200")
      ->capture_default_str();
  app.add_option("--log", options.log_file, "append one JSON line per answered request to FILE");
  app.add_option("--response-bytes", options.response_bytes, "extra filler bytes in every response body")
      ->capture_default_str();
  app.add_option("--idle-timeout", options.idle_timeout_seconds,
                 "seconds an idle keep-alive connection (or a slow request header) is kept")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u));
  CLI11_PARSE(app, argc, argv);
  try {
    return easedge::bench::run(options);
  } catch (const std::exception& e) {
    std::cerr << "standin-exchange: " << e.what() << std::endl;
    return 1;
  }
}
