#include "bench/easbench/runner.h"

#include "bench/easbench/identity.h"
#include "bench/easbench/latency.h"
#include "bench/easbench/report.h"
#include "bench/easbench/requests.h"
#include "bench/easbench/resumption.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <sys/resource.h>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <deque>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace easedge::bench {

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;
using namespace std::chrono_literals;

// Every wait is bounded, so a run always ends by itself.
constexpr auto connect_timeout = 5s;
constexpr auto tls_handshake_timeout = 10s;
constexpr auto response_timeout = 30s;           // after the request is written; a Ping adds its hold
constexpr auto upload_write_per_mib = 1s;          // write budget of an upload body on top of response_timeout
constexpr auto early_answer_timeout = 2s;         // reading an answer the server sent before the body was done
constexpr auto grace = 15s;                     // after --duration, in-flight requests may finish (+ ping hold)
constexpr auto error_backoff = 100ms;            // after a failed connect: no hot error loop
constexpr auto sweep_interval = 100ms;           // granularity of the timeouts above
constexpr auto monitor_tick = 50ms;
constexpr std::size_t connect_slots_per_thread = 128;  // concurrent connects+handshakes per thread (ramp-up)
constexpr std::uint64_t response_body_limit = 64 * 1024 * 1024;
constexpr std::size_t upload_chunk_bytes = 256 * 1024;
// Mix scenario, per device: Ping, then Sync, each cycle; a FolderSync every mix_folder_sync_every cycles and
// a SendMail upload every mix_upload_every cycles (phase per device); every storm_interval the held Pings
// of one device in storm_share are dropped and the devices reconnect at once (a reconnect storm).
constexpr std::uint64_t mix_folder_sync_every = 20;
constexpr std::uint64_t mix_upload_every = 50;
constexpr auto storm_interval = 10s;
constexpr std::uint32_t storm_share = 4;

enum ErrorKind { connect_error, tls_error, timeout_error, io_error, http_error, error_kind_count };
constexpr std::array<const char*, error_kind_count> error_kind_names{"connect", "tls", "timeout", "io", "http"};
constexpr int max_status = 600;

std::atomic<int> g_interrupts{0};
extern "C" void on_signal(int) { g_interrupts.fetch_add(1); }

void bump(std::atomic<std::uint64_t>& a) { a.fetch_add(1, std::memory_order_relaxed); }

// Counters of one I/O thread. Only that thread writes them; the monitor reads them for progress.
struct alignas(64) ThreadStats {
  std::atomic<std::uint64_t> requests{0}, ok{0}, errors{0}, handshakes{0}, aborted{0};
  std::atomic<std::uint64_t> resumed{0}, resume_missed{0};  // --resume: repeat handshakes that did / did not resume
  std::array<std::atomic<std::uint64_t>, max_status> status{};
  std::array<std::atomic<std::uint64_t>, error_kind_count> error_kinds{};
  std::vector<std::uint32_t> latency_us;  // read only after the thread ended
};

// Read-only run data plus the few counters all threads share.
struct Shared {
  explicit Shared(const Options& o) : opt(o) {}
  const Options& opt;
  std::vector<DeviceIdentity> ids;
  tcp::endpoint endpoint;
  auth::OwnedX509 pinned_server_cert;  // the leaf the preflight verified; every later handshake must present it
  std::string host_header;
  bool host_is_ip = false;
  const std::string sync = sync_body();
  const std::string folder_sync = folder_sync_body();
  std::string ping;
  std::string upload_chunk;
  Clock::time_point start;
  std::atomic<std::int64_t> budget{std::numeric_limits<std::int64_t>::max()};
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::int64_t> held{0};
  std::atomic<std::int64_t> peak_held{0};

  // Takes one request from the budget; false once the run stops issuing.
  bool claim() {
    if (stop.load(std::memory_order_relaxed)) return false;
    if (!opt.requests) return true;
    return budget.fetch_sub(1, std::memory_order_relaxed) > 0;
  }
  std::chrono::nanoseconds ping_hold() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(opt.ping_hold_s));
  }
};

// Binds the TLS object of one connection to its device identity and to the server name checks.
void configure_ssl(SSL* ssl, const DeviceIdentity& id, const Shared& s) {
  SSL_use_certificate(ssl, id.cert.get());
  SSL_use_PrivateKey(ssl, id.key.get());
  if (s.host_is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), s.opt.host.c_str());
  } else {
    SSL_set1_host(ssl, s.opt.host.c_str());
    SSL_set_tlsext_host_name(ssl, s.opt.host.c_str());
  }
}

// `verify`: the preflight context verifies the server chain and name against --ca; the load contexts
// instead pin the leaf the preflight verified (chain building per handshake would make easbench, not the
// server, the bottleneck of the handshake scenario).
void configure_context(ssl::context& ctx, const Options& opt, bool verify) {
  ctx.set_verify_mode(verify ? ssl::verify_peer : ssl::verify_none);
  if (verify) ctx.load_verify_file(opt.ca.string());
  if (opt.resume && !verify) {
    enable_session_tickets(ctx.native_handle());
  } else {
    // Every handshake is a full one: devices waking up have no session to resume.
    SSL_CTX_set_options(ctx.native_handle(), SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx.native_handle(), SSL_SESS_CACHE_OFF);
  }
  if (opt.scenario == Scenario::ping || opt.scenario == Scenario::mix) {
    SSL_CTX_set_mode(ctx.native_handle(), SSL_MODE_RELEASE_BUFFERS);  // thousands of idle connections
  }
}

class Worker;

// One simulated device connection: a coroutine that issues requests until the run stops issuing.
class Connection {
 public:
  Connection(Worker& w, Shared& s, const DeviceIdentity& id, std::uint32_t index);
  asio::awaitable<void> run();

  // Sweeper: closes the socket when the current step is past its deadline.
  void expire_if_due(Clock::time_point now);
  // Storm and end of run: drop the connection; the request in flight is counted as aborted.
  void drop();
  bool holding_ping() const { return holding_ping_; }
  std::uint32_t index() const { return index_; }

  // Wake-ups from the worker (connect slot granted, open-loop slot assigned, run stopping).
  void wake() { wake_.cancel(); }
  asio::awaitable<void> wait_wake();
  Clock::time_point scheduled_{};
  bool assigned_ = false;

 private:
  asio::awaitable<bool> connect(ErrorKind& kind);
  asio::awaitable<void> one_request(Command c, Clock::time_point scheduled);
  asio::awaitable<void> backoff();
  Command next_command();
  void close();
  void fail(ErrorKind kind);
  void set_deadline(Clock::duration d) {
    timed_out_ = false;
    deadline_ = Clock::now() + d;
  }

  Worker& w_;
  Shared& s_;
  const DeviceIdentity& id_;
  const std::uint32_t index_;
  const bool close_each_;
  std::optional<ssl::stream<tcp::socket>> stream_;
  beast::flat_buffer buffer_;
  asio::steady_timer wake_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timed_out_ = false;
  bool dropped_ = false;
  bool holding_ping_ = false;
  std::uint64_t cycle_ = 0;
  std::deque<Command> plan_;  // mix: the rest of this cycle
  std::string head_;
  DeviceSession session_;     // --resume: the latest ticket of this device
  bool handshaken_ = false;   // --resume: this device completed a handshake before (the next one must resume)
};

// One I/O thread: its io_context, TLS context, counters and connections.
class Worker {
 public:
  Worker(Shared& s, unsigned index, unsigned threads) : s_(s), index_(index), threads_(threads) {
    configure_context(ssl_, s.opt, false);
  }
  void add_connection(std::uint32_t conn_index) {
    conns_.push_back(std::make_unique<Connection>(*this, s_, s_.ids[conn_index % s_.ids.size()], conn_index));
  }
  void start();
  void run() { ioc_.run(); }
  void begin_stop() { asio::post(ioc_, [this] { stop_issuing(); }); }
  void abort_all() {
    asio::post(ioc_, [this] {
      aborting_ = true;
      stop_issuing();
      for (auto* c : connect_waiters_) c->wake();
      connect_waiters_.clear();
      for (auto& c : conns_) c->drop();
    });
  }
  bool finished() const { return finished_.load(); }

  asio::awaitable<void> acquire_connect_slot(Connection& c);
  void release_connect_slot();
  asio::awaitable<bool> wait_for_slot(Connection& c, Clock::time_point& scheduled);
  void connection_done();
  bool aborting() const { return aborting_; }
  bool stopping() const { return stopping_; }

  asio::io_context& ioc() { return ioc_; }
  ssl::context& ssl_context() { return ssl_; }
  ThreadStats& stats() { return stats_; }
  std::size_t connection_count() const { return conns_.size(); }

 private:
  void stop_issuing();
  asio::awaitable<void> sweep();
  asio::awaitable<void> dispatch();
  asio::awaitable<void> storm();

  Shared& s_;
  const unsigned index_;
  const unsigned threads_;
  asio::io_context ioc_{1};
  ssl::context ssl_{ssl::context::tls_client};
  ThreadStats stats_;
  std::vector<std::unique_ptr<Connection>> conns_;
  asio::steady_timer sweep_timer_{ioc_};
  asio::steady_timer dispatch_timer_{ioc_};
  asio::steady_timer storm_timer_{ioc_};
  std::size_t connect_slots_ = connect_slots_per_thread;
  std::deque<Connection*> connect_waiters_;
  std::deque<Connection*> idle_;                 // open loop: connections waiting for a slot, oldest first
  std::deque<Clock::time_point> backlog_;        // open loop: due slots no connection was free for
  bool dispatch_done_ = false;
  bool stopping_ = false;
  bool aborting_ = false;
  std::size_t live_ = 0;
  std::atomic<bool> finished_{false};
};

// ---- Connection ----

Connection::Connection(Worker& w, Shared& s, const DeviceIdentity& id, std::uint32_t index)
    : w_(w), s_(s), id_(id), index_(index), close_each_(s.opt.scenario == Scenario::handshake), wake_(w.ioc()) {}

asio::awaitable<void> Connection::wait_wake() {
  error_code ec;
  wake_.expires_at(Clock::time_point::max());
  co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

void Connection::expire_if_due(Clock::time_point now) {
  if (deadline_ > now) return;
  deadline_ = Clock::time_point::max();
  timed_out_ = true;
  if (stream_) {
    error_code ec;
    stream_->next_layer().close(ec);
  }
}

void Connection::drop() {
  dropped_ = true;
  wake();
  if (stream_) {
    error_code ec;
    stream_->next_layer().close(ec);
  }
}

void Connection::close() {
  if (!stream_) return;
  error_code ec;
  stream_->next_layer().close(ec);
  stream_.reset();
  buffer_.clear();
}

void Connection::fail(ErrorKind kind) {
  ThreadStats& st = w_.stats();
  if (dropped_) {
    bump(st.aborted);
  } else {
    bump(st.requests);
    bump(st.errors);
    bump(st.error_kinds[timed_out_ ? timeout_error : kind]);
  }
  close();
}

asio::awaitable<void> Connection::backoff() {
  error_code ec;
  wake_.expires_after(error_backoff);
  co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<bool> Connection::connect(ErrorKind& kind) {
  co_await w_.acquire_connect_slot(*this);
  if (w_.aborting()) {
    kind = connect_error;
    co_return false;
  }
  stream_.emplace(w_.ioc(), w_.ssl_context());
  configure_ssl(stream_->native_handle(), id_, s_);
  if (s_.opt.resume) session_.attach(stream_->native_handle());
  error_code ec;
  set_deadline(connect_timeout);
  kind = connect_error;
  co_await stream_->next_layer().async_connect(s_.endpoint, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) {
    stream_->next_layer().set_option(tcp::no_delay(true), ec);
    set_deadline(tls_handshake_timeout);
    kind = tls_error;
    co_await stream_->async_handshake(ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
    const X509* peer = ec ? nullptr : SSL_get0_peer_certificate(stream_->native_handle());
    if (!ec && (!peer || X509_cmp(peer, s_.pinned_server_cert.get()) != 0)) ec = asio::error::access_denied;
  }
  deadline_ = Clock::time_point::max();
  w_.release_connect_slot();
  if (ec || dropped_) co_return false;
  bump(w_.stats().handshakes);
  if (SSL_session_reused(stream_->native_handle())) {
    bump(w_.stats().resumed);
  } else if (s_.opt.resume && handshaken_) {
    bump(w_.stats().resume_missed);  // no ticket arrived, or the server refused the one offered
  }
  handshaken_ = true;
  co_return true;
}

Command Connection::next_command() {
  switch (s_.opt.scenario) {
    case Scenario::handshake:
    case Scenario::sync: return Command::sync;
    case Scenario::ping: return Command::ping;
    case Scenario::upload: return Command::send_mail;
    case Scenario::mix: break;
  }
  if (plan_.empty()) {
    plan_.push_back(Command::ping);
    plan_.push_back(Command::sync);
    if ((cycle_ + index_) % mix_folder_sync_every == 0) plan_.push_back(Command::folder_sync);
    if ((cycle_ + index_) % mix_upload_every == mix_upload_every / 2) plan_.push_back(Command::send_mail);
    ++cycle_;
  }
  Command c = plan_.front();
  plan_.pop_front();
  return c;
}

asio::awaitable<void> Connection::run() {
  // Keep-alive scenarios open their connection up front, so idle connections exist from the start (a
  // failure here is retried, and counted, by the first request).
  if (!close_each_) {
    ErrorKind kind;
    if (!co_await connect(kind)) close();
  }
  while (!w_.aborting()) {
    Clock::time_point scheduled;
    if (s_.opt.rate) {
      if (!co_await w_.wait_for_slot(*this, scheduled)) break;
    } else {
      if (!s_.claim()) break;
      scheduled = Clock::now();
    }
    co_await one_request(next_command(), scheduled);
  }
  close();
  w_.connection_done();
}

asio::awaitable<void> Connection::one_request(Command c, Clock::time_point scheduled) {
  s_.in_flight.fetch_add(1, std::memory_order_relaxed);
  struct InFlight {
    Shared& s;
    ~InFlight() { s.in_flight.fetch_sub(1, std::memory_order_relaxed); }
  } in_flight{s_};
  dropped_ = false;
  ThreadStats& st = w_.stats();
  if (!stream_) {
    ErrorKind kind;
    if (!co_await connect(kind)) {
      fail(kind);
      if (!w_.aborting()) co_await backoff();
      co_return;
    }
  }
  const std::uint64_t body_bytes = c == Command::send_mail ? s_.opt.upload_bytes
                                   : c == Command::ping    ? s_.ping.size()
                                   : c == Command::folder_sync ? s_.folder_sync.size()
                                                              : s_.sync.size();
  head_ = request_head(c, RequestTarget{s_.opt.path, s_.host_header, id_.user, id_.device_id}, body_bytes, close_each_);
  error_code ec;
  if (c == Command::send_mail) {
    set_deadline(response_timeout + upload_write_per_mib * static_cast<long>(body_bytes >> 20));
    co_await asio::async_write(*stream_, asio::buffer(head_), asio::redirect_error(asio::use_awaitable, ec));
    for (std::uint64_t left = body_bytes; left > 0 && !ec;) {
      const std::size_t n = std::min<std::uint64_t>(left, s_.upload_chunk.size());
      co_await asio::async_write(*stream_, asio::buffer(s_.upload_chunk.data(), n),
                                 asio::redirect_error(asio::use_awaitable, ec));
      left -= n;
    }
  } else {
    // Head and a small body in one TLS record, as a device's HTTP stack sends them.
    head_ += c == Command::ping ? s_.ping : c == Command::folder_sync ? s_.folder_sync : s_.sync;
    set_deadline(response_timeout);
    co_await asio::async_write(*stream_, asio::buffer(head_), asio::redirect_error(asio::use_awaitable, ec));
  }
  // A server may answer before reading the whole body (413 for an oversized upload) and close: then the
  // write fails, but the answer is still worth reading.
  const bool write_failed = static_cast<bool>(ec);
  if (write_failed && (dropped_ || timed_out_)) {
    fail(io_error);
    co_return;
  }
  if (write_failed) {
    set_deadline(early_answer_timeout);
  } else if (c == Command::ping) {
    holding_ping_ = true;
    const auto held = s_.held.fetch_add(1, std::memory_order_relaxed) + 1;
    auto peak = s_.peak_held.load(std::memory_order_relaxed);
    while (held > peak && !s_.peak_held.compare_exchange_weak(peak, held, std::memory_order_relaxed)) {
    }
    set_deadline(response_timeout + s_.ping_hold());
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(response_body_limit);
  co_await http::async_read(*stream_, buffer_, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (holding_ping_) {
    holding_ping_ = false;
    s_.held.fetch_sub(1, std::memory_order_relaxed);
  }
  deadline_ = Clock::time_point::max();
  if (ec) {
    // A close before any answer (end_of_stream) is a transport failure; other parser errors are HTTP ones.
    const bool parse_error = ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
                             ec != http::error::end_of_stream;
    fail(write_failed || !parse_error ? io_error : http_error);
    co_return;
  }
  const int status = parser.get().result_int();
  const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - scheduled).count();
  bump(st.requests);
  bump(status >= 200 && status < 300 ? st.ok : st.errors);
  if (status >= 0 && status < max_status) bump(st.status[status]);
  st.latency_us.push_back(static_cast<std::uint32_t>(std::min<long long>(latency, UINT32_MAX)));
  if (write_failed || close_each_ || !parser.get().keep_alive()) close();
}

// ---- Worker ----

void Worker::start() {
  live_ = conns_.size();
  for (auto& c : conns_) asio::co_spawn(ioc_, c->run(), asio::detached);
  asio::co_spawn(ioc_, sweep(), asio::detached);
  if (s_.opt.rate) asio::co_spawn(ioc_, dispatch(), asio::detached);
  if (s_.opt.scenario == Scenario::mix) asio::co_spawn(ioc_, storm(), asio::detached);
}

void Worker::stop_issuing() {
  stopping_ = true;
  dispatch_done_ = true;
  backlog_.clear();
  dispatch_timer_.cancel();
  storm_timer_.cancel();
  for (auto* c : idle_) c->wake();
  idle_.clear();
}

asio::awaitable<void> Worker::acquire_connect_slot(Connection& c) {
  if (connect_slots_ > 0) {
    --connect_slots_;
    co_return;
  }
  connect_waiters_.push_back(&c);
  co_await c.wait_wake();
  // Granted by release_connect_slot (which hands its slot over) or woken by abort_all.
}

void Worker::release_connect_slot() {
  if (!connect_waiters_.empty()) {
    Connection* next = connect_waiters_.front();
    connect_waiters_.pop_front();
    next->wake();
  } else {
    ++connect_slots_;
  }
}

asio::awaitable<bool> Worker::wait_for_slot(Connection& c, Clock::time_point& scheduled) {
  if (!backlog_.empty()) {
    scheduled = backlog_.front();
    backlog_.pop_front();
    co_return true;
  }
  if (dispatch_done_) co_return false;
  c.assigned_ = false;
  idle_.push_back(&c);
  co_await c.wait_wake();
  if (!c.assigned_) co_return false;
  scheduled = c.scheduled_;
  co_return true;
}

void Worker::connection_done() {
  if (--live_ > 0) return;
  stop_issuing();
  sweep_timer_.cancel();
  finished_ = true;
}

asio::awaitable<void> Worker::sweep() {
  while (!finished_) {
    error_code ec;
    sweep_timer_.expires_after(sweep_interval);
    co_await sweep_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    const auto now = Clock::now();
    for (auto& c : conns_) c->expire_if_due(now);
  }
}

// Open loop: slot k of this thread is due at start + (k * threads + index) / rate; a due slot goes to the
// connection idle the longest, or waits in the backlog. Latency counts from the due time.
asio::awaitable<void> Worker::dispatch() {
  const std::chrono::duration<double> step(1.0 / *s_.opt.rate);
  for (std::uint64_t k = 0; !dispatch_done_; ++k) {
    const auto due = s_.start + std::chrono::duration_cast<Clock::duration>(step * (double(k) * threads_ + index_));
    if (due > Clock::now()) {
      error_code ec;
      dispatch_timer_.expires_at(due);
      co_await dispatch_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (dispatch_done_ || !s_.claim()) break;
    if (!idle_.empty()) {
      Connection* c = idle_.front();
      idle_.pop_front();
      c->assigned_ = true;
      c->scheduled_ = due;
      c->wake();
    } else {
      backlog_.push_back(due);
    }
  }
  dispatch_done_ = true;
  for (auto* c : idle_) c->wake();
  idle_.clear();
}

asio::awaitable<void> Worker::storm() {
  for (std::uint32_t round = 0; !stopping_; ++round) {
    error_code ec;
    storm_timer_.expires_after(storm_interval);
    co_await storm_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_) break;
    for (auto& c : conns_) {
      if (c->index() % storm_share == round % storm_share && c->holding_ping()) c->drop();
    }
  }
}

// ---- start-up ----

// Connects and handshakes once, so an unreachable server or a refused certificate is one clear message.
bool preflight(Shared& s, std::ostream& err) {
  ssl::context ctx(ssl::context::tls_client);
  try {
    configure_context(ctx, s.opt, true);
  } catch (const boost::system::system_error& e) {
    err << "easbench: --ca '" << s.opt.ca.string() << "': no usable CA certificate (" << e.code().message() << ")\n";
    return false;
  }
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  error_code ec;
  auto results = resolver.resolve(s.opt.host, std::to_string(s.opt.port), ec);
  if (ec || results.empty()) {
    err << "easbench: cannot resolve '" << s.opt.host << "': " << ec.message() << "\n";
    return false;
  }
  std::string last_problem;
  for (const auto& entry : results) {
    const tcp::endpoint ep = entry.endpoint();
    if (!ep.address().is_loopback()) {
      err << "easbench: '" << s.opt.host << "' resolves to " << ep.address().to_string()
          << ", which is not loopback; easbench only loads this machine\n";
      return false;
    }
    ssl::stream<tcp::socket> stream(ioc, ctx);
    configure_ssl(stream.native_handle(), s.ids.front(), s);
    std::optional<error_code> connect_ec, handshake_ec;
    stream.next_layer().async_connect(ep, [&](error_code e) {
      connect_ec = e;
      if (!e) stream.async_handshake(ssl::stream_base::client, [&](error_code h) { handshake_ec = h; });
    });
    ioc.restart();
    ioc.run_for(connect_timeout + tls_handshake_timeout);
    const std::string where = ep.address().to_string() + ":" + std::to_string(ep.port());
    if (!connect_ec) {
      last_problem = "cannot connect to " + where + ": timed out";
    } else if (*connect_ec) {
      last_problem = "cannot connect to " + where + ": " + connect_ec->message();
    } else if (!handshake_ec) {
      last_problem = "TLS handshake with " + where + " timed out";
    } else if (*handshake_ec) {
      last_problem = "TLS handshake with " + where + " failed: " + handshake_ec->message();
    } else {
      s.endpoint = ep;
      s.pinned_server_cert.reset(SSL_get1_peer_certificate(stream.native_handle()));
      return true;
    }
    stream.next_layer().close(ec);
  }
  err << "easbench: " << last_problem << "\n";
  return false;
}

double seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

struct Totals {
  std::uint64_t requests = 0, ok = 0, errors = 0, handshakes = 0, aborted = 0;
};

Totals totals(const std::vector<std::unique_ptr<Worker>>& workers) {
  Totals t;
  for (const auto& w : workers) {
    ThreadStats& st = w->stats();
    t.requests += st.requests.load(std::memory_order_relaxed);
    t.ok += st.ok.load(std::memory_order_relaxed);
    t.errors += st.errors.load(std::memory_order_relaxed);
    t.handshakes += st.handshakes.load(std::memory_order_relaxed);
    t.aborted += st.aborted.load(std::memory_order_relaxed);
  }
  return t;
}

}  // namespace

int run_benchmark(const Options& opt, std::ostream& out, std::ostream& err) {
  Shared s(opt);
  unsigned threads = opt.threads ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min<unsigned>(threads, opt.connections);

  try {
    if (opt.minted()) {
      const auto t0 = Clock::now();
      auto last = t0;
      std::uint32_t last_done = 0;
      s.ids = mint_identities(opt.device_ca, opt.device_ca_key, opt.devices, opt.upn_domain, opt.key_type,
                              std::max(1u, std::thread::hardware_concurrency()), [&](std::uint32_t done) {
                                // Quiet when minting is quick; once a second (and at the end) when it is not.
                                const auto now = Clock::now();
                                if (now - t0 < 1s || (now - last < 1s && done < opt.devices) || last_done == done) {
                                  return;
                                }
                                last = now;
                                last_done = done;
                                err << "easbench: minted " << done << "/" << opt.devices << " device identities ("
                                    << (opt.key_type == KeyType::p256 ? "P-256" : "RSA-2048") << ")\n";
                              });
    } else {
      s.ids.push_back(load_identity(opt.cert, opt.key));
    }
  } catch (const IdentityError& e) {
    err << "easbench: " << e.what() << "\n";
    return 1;
  }

  const bool host_is_ip = [&] {
    error_code ec;
    asio::ip::make_address(opt.host, ec);
    return !ec;
  }();
  s.host_is_ip = host_is_ip;
  s.host_header = (opt.host.find(':') != std::string::npos ? "[" + opt.host + "]" : opt.host) + ":" +
                  std::to_string(opt.port);
  s.ping = ping_body(static_cast<std::uint32_t>(opt.ping_hold_s));
  if (opt.scenario == Scenario::upload || opt.scenario == Scenario::mix) {
    s.upload_chunk.assign(std::min<std::uint64_t>(upload_chunk_bytes, std::max<std::uint64_t>(opt.upload_bytes, 1)), 'u');
  }
  if (!preflight(s, err)) return 1;
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned t = 0; t < threads; ++t) workers.push_back(std::make_unique<Worker>(s, t, threads));

  for (std::uint32_t i = 0; i < opt.connections; ++i) workers[i % threads]->add_connection(i);
  if (opt.requests) s.budget = static_cast<std::int64_t>(*opt.requests);

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  rusage usage_before{};
  getrusage(RUSAGE_SELF, &usage_before);
  s.start = Clock::now();
  for (auto& w : workers) w->start();
  std::vector<std::thread> pool;
  for (auto& w : workers) pool.emplace_back([&w] { w->run(); });

  const auto deadline = opt.duration_s ? s.start + std::chrono::duration_cast<Clock::duration>(
                                                       std::chrono::duration<double>(*opt.duration_s))
                                       : Clock::time_point::max();
  auto next_progress = s.start + 1s;
  std::uint64_t last_requests = 0;
  auto progress = [&](const char* phase) {
    const Totals t = totals(workers);
    const double elapsed = std::chrono::duration<double>(Clock::now() - s.start).count();
    err << "easbench: " << phase << " " << static_cast<long>(elapsed) << "s";
    if (opt.duration_s) err << "/" << *opt.duration_s << "s";
    err << "  requests " << t.requests;
    if (opt.requests) err << "/" << *opt.requests;
    err << " (" << (t.requests - last_requests) << "/s)  ok " << t.ok << "  errors " << t.errors << "  handshakes "
        << t.handshakes << "  in-flight " << s.in_flight.load() << "  held-pings " << s.held.load() << "\n";
    last_requests = t.requests;
  };
  auto all_finished = [&] {
    for (auto& w : workers) {
      if (!w->finished()) return false;
    }
    return true;
  };

  while (true) {
    std::this_thread::sleep_for(monitor_tick);
    const auto now = Clock::now();
    if (now >= next_progress) {
      progress("run");
      next_progress += 1s;
    }
    if (g_interrupts.load() > 0 || now >= deadline || all_finished()) break;
    if (opt.requests) {
      const Totals t = totals(workers);
      if (t.requests + t.aborted >= *opt.requests) break;
    }
  }
  s.stop = true;
  for (auto& w : workers) w->begin_stop();
  const bool holds = opt.scenario == Scenario::ping || opt.scenario == Scenario::mix;
  const auto drain_until = Clock::now() + grace + (holds ? s.ping_hold() : Clock::duration::zero());
  auto end = Clock::now();
  while (s.in_flight.load() > 0 && Clock::now() < drain_until && g_interrupts.load() < 2 && !all_finished()) {
    std::this_thread::sleep_for(monitor_tick);
    if (Clock::now() >= next_progress) {
      progress("draining");
      next_progress += 1s;
    }
    end = Clock::now();
  }
  if (s.in_flight.load() > 0) end = Clock::now();
  for (auto& w : workers) w->abort_all();
  for (auto& th : pool) th.join();
  rusage usage_after{};
  getrusage(RUSAGE_SELF, &usage_after);

  RunResult r;
  r.scenario = scenario_name(opt.scenario);
  r.connections = opt.connections;
  r.threads = threads;
  r.duration_s = std::chrono::duration<double>(end - s.start).count();
  std::vector<std::uint32_t> samples;
  for (auto& w : workers) {
    ThreadStats& st = w->stats();
    r.requests += st.requests;
    r.ok += st.ok;
    r.errors += st.errors;
    r.handshakes += st.handshakes;
    r.aborted += st.aborted;
    r.resumed_handshakes += st.resumed;
    r.resume_missed += st.resume_missed;
    for (int code = 0; code < max_status; ++code) {
      if (st.status[code]) r.status_counts[code] += st.status[code];
    }
    for (int k = 0; k < error_kind_count; ++k) r.transport_errors[error_kind_names[k]] += st.error_kinds[k];
    samples.insert(samples.end(), st.latency_us.begin(), st.latency_us.end());
  }
  r.latency = summarize_latency(samples);
  r.peak_held_pings = s.peak_held.load();
  r.resume = opt.resume;
  r.cpu_user_s = seconds(usage_after.ru_utime) - seconds(usage_before.ru_utime);
  r.cpu_sys_s = seconds(usage_after.ru_stime) - seconds(usage_before.ru_stime);
  write_table(r, out);
  if (!opt.json.empty()) {
    std::ofstream json(opt.json);
    write_json(r, json);
    json.close();
    if (!json) {
      err << "easbench: cannot write --json file '" << opt.json.string() << "'\n";
      return 1;
    }
  }
  if (opt.resume && r.resume_missed > 0) {
    err << "easbench: the server did not resume " << r.resume_missed << " of "
        << r.resume_missed + r.resumed_handshakes
        << " repeat connections (no session ticket, or the ticket refused): it does not resume\n";
    return kExitNotResumed;
  }
  return 0;
}

}  // namespace easedge::bench
