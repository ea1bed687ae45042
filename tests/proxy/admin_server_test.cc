#include "proxy/admin_server.h"

#include "auth/revocation/revocation_checker.h"
#include "auth/tls_context.h"
#include "proxy/admin_crl_watch.h"
#include "tests/auth/revocation/test_pki.h"
#include "tests/support/test_pki.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <thread>

namespace easedge::proxy {
namespace {

namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using namespace std::chrono_literals;

const config::TimeoutsConfig short_timeouts{.handshake = 5s, .request_header = 5s};

class AdminServerTest : public ::testing::Test {
protected:
  AdminServerTest() {
    registry_.counter("t_total", "T.").inc(3);
    server_ = AdminServer::create(io_, {"127.0.0.1", 0}, registry_,
                                  [this] {
                                    return std::vector<ReadinessCheck>{{"listeners", true, {}},
                                                                       {"upstream", upstream_ok_.load(), "connect refused"}};
                                  },
                                  short_timeouts);
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~AdminServerTest() override {
    server_->stop();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  tcp::socket connect() {
    tcp::socket socket(client_io_);
    socket.connect(server_->local_endpoint());
    return socket;
  }

  http::response<http::string_body> exchange(tcp::socket& socket, http::verb method, const std::string& target,
                                             bool keep_alive = false) {
    http::request<http::empty_body> request{method, target, 11};
    request.set(http::field::host, "localhost");
    request.keep_alive(keep_alive);
    http::write(socket, request);
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.skip(method == http::verb::head);
    http::read(socket, buffer, parser);
    return parser.release();
  }

  // Everything the server at `to` sends on a connection that writes `bytes` (nothing when empty), until it
  // closes.
  std::string sent_back(const tcp::endpoint& to, const std::string& bytes) {
    tcp::socket socket(client_io_);
    socket.connect(to);
    timeval limit{10, 0};  // a server that never closes fails the test instead of hanging it
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    if (!bytes.empty()) boost::asio::write(socket, boost::asio::buffer(bytes));
    std::string received;
    boost::system::error_code ec;
    char chunk[4096];
    for (;;) {
      auto n = socket.read_some(boost::asio::buffer(chunk), ec);
      if (ec) break;
      received.append(chunk, n);
    }
    EXPECT_TRUE(ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset) << ec.message();
    return received;
  }

  http::response<http::string_body> get(const std::string& target, http::verb method = http::verb::get) {
    auto socket = connect();
    return exchange(socket, method, target);
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  boost::asio::io_context client_io_;
  MetricsRegistry registry_;
  std::atomic<bool> upstream_ok_{true};
  std::shared_ptr<AdminServer> server_;
  std::thread thread_;
};

TEST_F(AdminServerTest, HealthzIsOk) {
  auto response = get("/healthz");
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_EQ(response.body(), "ok\n");
  EXPECT_NE(server_->local_endpoint().port(), 0);
}

TEST_F(AdminServerTest, ReadyzListsTheFailingChecks) {
  auto response = get("/readyz");
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_EQ(response.body(), "ready\nok listeners\nok upstream: connect refused\n");
  upstream_ok_ = false;
  response = get("/readyz");
  EXPECT_EQ(response.result_int(), 503);
  EXPECT_EQ(response.body(), "not ready\nok listeners\nFAIL upstream: connect refused\n");
}

TEST_F(AdminServerTest, MetricsAreServedInTextFormat) {
  auto response = get("/metrics");
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_EQ(response[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(response.body().find("t_total 3\n"), std::string::npos) << response.body();
}

TEST_F(AdminServerTest, UnknownPathsMethodsAndHead) {
  EXPECT_EQ(get("/").result_int(), 404);
  EXPECT_EQ(get("/healthz/../metrics").result_int(), 404);
  EXPECT_EQ(get("/healthz", http::verb::post).result_int(), 405);
  auto head = get("/healthz", http::verb::head);
  EXPECT_EQ(head.result_int(), 200);
  EXPECT_EQ(head[http::field::content_length], "3");
}

TEST_F(AdminServerTest, KeepAliveServesSeveralRequests) {
  auto socket = connect();
  EXPECT_EQ(exchange(socket, http::verb::get, "/healthz", true).result_int(), 200);
  EXPECT_EQ(exchange(socket, http::verb::get, "/metrics", true).result_int(), 200);
  EXPECT_EQ(exchange(socket, http::verb::get, "/readyz", false).result_int(), 200);
}

TEST_F(AdminServerTest, OversizedOrGarbageRequestsAreDropped) {
  for (const std::string& hostile :
       {"GET /healthz HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n", std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n"),
        std::string("POST /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")}) {
    auto received = sent_back(server_->local_endpoint(), hostile);
    EXPECT_EQ(received.find("200 OK"), std::string::npos) << received;
  }
  EXPECT_EQ(get("/healthz").result_int(), 200);  // still serving
}

TEST_F(AdminServerTest, BindFailureNamesTheKey) {
  boost::asio::io_context io;
  try {
    AdminServer::create(io, {"127.0.0.1", server_->local_endpoint().port()}, registry_, {}, short_timeouts);
    FAIL() << "bound twice";
  } catch (const config::ConfigError& e) {
    EXPECT_EQ(e.key(), "admin.listen");
  }
}

// A server with admin.auth: token and a route under /api/ and one outside it, as the console adds them.
class AdminAuthTest : public AdminServerTest {
protected:
  AdminAuthTest() {
    config::AdminConfig admin{"127.0.0.1", 0};
    admin.auth = config::AdminAuth::token;
    admin.token = "s3cret-token-0123456789";
    admin.explain_max_bytes = 2048;
    guarded_ = AdminServer::create(io_, admin, registry_, {}, short_timeouts, [](const AdminRequest& request, auto done) {
      if (request.target != "/api/echo" && request.target != "/page") return false;
      done(AdminAnswer{200, "text/plain", std::string(request.method) + " " + std::string(request.body)});
      return true;
    });
    guarded_->start();
  }
  ~AdminAuthTest() override { guarded_->stop(); }

  http::response<http::string_body> send(http::verb method, const std::string& target, std::string authorization,
                                         std::string body = {}) {
    tcp::socket socket(client_io_);
    socket.connect(guarded_->local_endpoint());
    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, "localhost");
    if (!authorization.empty()) request.set(http::field::authorization, authorization);
    request.body() = std::move(body);
    request.prepare_payload();
    http::write(socket, request);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(socket, buffer, response);
    return response;
  }

  std::shared_ptr<AdminServer> guarded_;
};

TEST_F(AdminAuthTest, ApiNeedsTheBearerToken) {
  EXPECT_EQ(send(http::verb::get, "/api/echo", "").result_int(), 401);
  EXPECT_EQ(send(http::verb::get, "/api/echo", "").at(http::field::www_authenticate), "Bearer realm=\"easedge-admin\"");
  EXPECT_EQ(send(http::verb::get, "/api/echo", "Bearer wrong").result_int(), 401);
  EXPECT_EQ(send(http::verb::get, "/api/echo", "Bearer s3cret-token-012345678").result_int(), 401);
  EXPECT_EQ(send(http::verb::get, "/api/echo", "Basic s3cret-token-0123456789").result_int(), 401);
  auto ok = send(http::verb::post, "/api/echo", "Bearer s3cret-token-0123456789", "pem");
  EXPECT_EQ(ok.result_int(), 200);
  EXPECT_EQ(ok.body(), "POST pem");
  // Static pages and the monitoring endpoints carry no data worth a credential and stay open.
  EXPECT_EQ(send(http::verb::get, "/page", "").result_int(), 200);
  EXPECT_EQ(send(http::verb::get, "/healthz", "").result_int(), 200);
  EXPECT_EQ(send(http::verb::get, "/metrics", "").result_int(), 200);
}

TEST_F(AdminAuthTest, BodiesAreLimitedAndAnswersCarryTheSecurityHeaders) {
  auto big = send(http::verb::post, "/api/echo", "Bearer s3cret-token-0123456789", std::string(4096, 'x'));
  EXPECT_EQ(big.result_int(), 413);
  auto page = send(http::verb::get, "/page", "");
  EXPECT_NE(std::string(page["Content-Security-Policy"]).find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(page["X-Content-Type-Options"], "nosniff");
  EXPECT_EQ(send(http::verb::post, "/healthz", "").result_int(), 405);
}

// An HTTPS admin server with admin.auth: client_certificate. Operators hold certificates from the operator CA;
// the device CA's certificates (trusted for ActiveSync, not for the console) must not open it.
class AdminClientCertificateTest : public AdminServerTest {
protected:
  AdminClientCertificateTest()
      : operator_ca_(easedge::testing::make_ca(easedge::testing::common_name("Operator CA"))),
        device_ca_(easedge::testing::make_ca(easedge::testing::common_name("Device CA"))),
        operator_(issue_client("Ada Operator", operator_ca_)),
        device_(issue_client("WorkspaceONEUEM.alice", device_ca_)) {
    // As main() does: OpenSSL writes on the sockets itself, and a client that already left must not end the test.
    std::signal(SIGPIPE, SIG_IGN);
    easedge::testing::CertSpec server;
    server.subject = easedge::testing::common_name("admin.easedge.test");
    server.extensions = {{"extendedKeyUsage", "serverAuth"}};
    auto issued = easedge::testing::issue(server, operator_ca_);
    config_.source_file = dir_.path() / "easedge.yaml";
    config_.admin = config::AdminConfig{"127.0.0.1", 0, config::AdminAuth::client_certificate};
    config_.admin->certificate = dir_.write("admin.pem", easedge::testing::to_pem(issued.cert.get()));
    config_.admin->private_key = dir_.write("admin.key", easedge::testing::to_pem(issued.key.get()));
    config_.admin->client_ca = dir_.write("operator-ca.pem", easedge::testing::to_pem(operator_ca_.cert.get()));
    guarded_ = AdminServer::create(io_, *config_.admin, registry_, {}, {.handshake = 1s, .request_header = 5s},
                                   [](const AdminRequest& request, auto done) {
                                     if (request.target != "/api/echo" && request.target != "/page") return false;
                                     done(AdminAnswer{200, "text/plain", "served"});
                                     return true;
                                   },
                                   auth::make_admin_context(config_));
    guarded_->start();
  }
  ~AdminClientCertificateTest() override { guarded_->stop(); }

  static easedge::testing::Issued issue_client(const std::string& name, const easedge::testing::Issued& ca) {
    easedge::testing::CertSpec spec;
    spec.subject = easedge::testing::common_name(name);
    spec.extensions = {{"extendedKeyUsage", "clientAuth"}};
    return easedge::testing::issue(spec, ca);
  }

  // One GET over TLS, presenting `client` when given; the server is verified against the operator CA.
  http::response<http::string_body> get_tls(const std::string& target, const easedge::testing::Issued* client) {
    namespace ssl = boost::asio::ssl;
    ssl::context context(ssl::context::tls_client);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(context.native_handle()), operator_ca_.cert.get());
    context.set_verify_mode(ssl::verify_peer);
    if (client != nullptr) {
      SSL_CTX_use_certificate(context.native_handle(), client->cert.get());
      SSL_CTX_use_PrivateKey(context.native_handle(), client->key.get());
    }
    ssl::stream<tcp::socket> stream(client_io_, context);
    stream.next_layer().connect(guarded_->local_endpoint());
    stream.handshake(ssl::stream_base::client);
    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::host, "localhost");
    request.keep_alive(false);
    http::write(stream, request);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    return response;
  }

public:
  void use_operator_ca(const std::string& pem) { config_.admin->client_ca = dir_.write("operator-ca.pem", pem); }

protected:
  easedge::testing::TempDir dir_{"easedge-admin-tls"};
  easedge::testing::Issued operator_ca_;
  easedge::testing::Issued device_ca_;
  easedge::testing::Issued operator_;
  easedge::testing::Issued device_;
  config::Config config_;
  std::shared_ptr<AdminServer> guarded_;
};

TEST_F(AdminClientCertificateTest, AnOperatorCertificateOpensTheConsole) {
  auto api = get_tls("/api/echo", &operator_);
  EXPECT_EQ(api.result_int(), 200);
  EXPECT_EQ(api.body(), "served");
  EXPECT_EQ(get_tls("/page", &operator_).result_int(), 200);
  EXPECT_EQ(get_tls("/nowhere", &operator_).result_int(), 404);
}

TEST_F(AdminClientCertificateTest, WithoutACertificateOnlyTheProbesAnswer) {
  auto api = get_tls("/api/echo", nullptr);
  EXPECT_EQ(api.result_int(), 401);
  EXPECT_NE(api.body().find("no client certificate"), std::string::npos) << api.body();
  EXPECT_EQ(get_tls("/page", nullptr).result_int(), 401);  // with certificates, the pages are guarded too
  EXPECT_EQ(get_tls("/healthz", nullptr).result_int(), 200);
  EXPECT_EQ(get_tls("/readyz", nullptr).result_int(), 200);
  EXPECT_EQ(get_tls("/metrics?x=1", nullptr).result_int(), 200);
}

TEST_F(AdminClientCertificateTest, ACertificateFromAnotherCaIsRefused) {
  auto api = get_tls("/api/echo", &device_);
  EXPECT_EQ(api.result_int(), 401);
  EXPECT_NE(api.body().find("CN=WorkspaceONEUEM.alice is not trusted by admin.client_ca"), std::string::npos)
      << api.body();
  EXPECT_EQ(get_tls("/page", &device_).result_int(), 401);
  // A self-signed certificate naming the operator CA is no operator either.
  auto forged_ca = easedge::testing::make_ca(easedge::testing::common_name("Operator CA"));
  auto forged = issue_client("Ada Operator", forged_ca);
  EXPECT_EQ(get_tls("/api/echo", &forged).result_int(), 401);
  EXPECT_EQ(get_tls("/healthz", &device_).result_int(), 200);
}

TEST_F(AdminClientCertificateTest, PlainHttpAndSilentClientsAreClosedAndTheServerGoesOn) {
  auto answer = sent_back(guarded_->local_endpoint(), "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(answer.find("HTTP/1.1 200"), std::string::npos) << answer;
  EXPECT_EQ(sent_back(guarded_->local_endpoint(), ""), "");  // no ClientHello: closed after the handshake timeout (1 s here)
  EXPECT_EQ(get_tls("/api/echo", &operator_).result_int(), 200);
}

TEST_F(AdminClientCertificateTest, ANewTlsContextServesNewConnections) {
  // A reload whose admin.client_ca now holds the device CA: the device certificate passes, the operator's not.
  config_.admin->client_ca = dir_.write("device-ca.pem", easedge::testing::to_pem(device_ca_.cert.get()));
  guarded_->use_tls_context(auth::make_admin_context(config_));
  EXPECT_EQ(get_tls("/api/echo", &device_).result_int(), 200);
  EXPECT_EQ(get_tls("/api/echo", &operator_).result_int(), 401);
}

// The operator CA of the admin.crl tests, in admin.client_ca: a CRL of `ca` may revoke `withdrawn` (serial 7)
// and keep `kept` (serial 5).
struct RevocableOperators {
  RevocableOperators(AdminClientCertificateTest& test, const std::string& ca_name)
      : ca(ca_name), kept(ca.issue_leaf_with_key(5, "Kept Operator")),
        withdrawn(ca.issue_leaf_with_key(7, "Withdrawn Operator")) {
    test.use_operator_ca(ca.cert_pem());
  }
  auth::testing::TestCa ca;
  easedge::testing::Issued kept;
  easedge::testing::Issued withdrawn;
};

// admin.crl: each operator certificate is checked against its CA's CRL, and the check fails closed.
TEST_F(AdminClientCertificateTest, AdminCrlRefusesAWithdrawnOperatorAndFailsClosed) {
  const RevocableOperators operators(*this, "Revoking Operator CA");
  const auto& [ca, kept, withdrawn] = operators;
  auto reload_with_crl = [&](const std::string& crl) {  // as a SIGHUP does: a new context for new connections
    config_.admin->crl = {dir_.write("operators.crl", crl)};
    guarded_->use_tls_context(auth::make_admin_context(config_));
  };
  auto refusal = [&](const easedge::testing::Issued& client) {
    auto answer = get_tls("/api/echo", &client);
    EXPECT_EQ(answer.result_int(), 401);
    return answer.body();
  };

  reload_with_crl(ca.crl_pem({.revoked = {{7}}}));
  EXPECT_EQ(get_tls("/api/echo", &kept).result_int(), 200);
  EXPECT_NE(refusal(withdrawn).find("CN=Withdrawn Operator is refused by admin.crl: certificate revoked"),
            std::string::npos);
  EXPECT_EQ(get_tls("/healthz", &withdrawn).result_int(), 200);  // the probes stay open

  // A CRL past its nextUpdate, or none from this CA: none of its operators get in.
  reload_with_crl(ca.crl_pem({.this_update_offset = -7200s, .next_update_offset = -60s}));
  EXPECT_NE(refusal(kept).find("is refused by admin.crl: CRL has expired"), std::string::npos);
  reload_with_crl(auth::testing::TestCa("Another CA").crl_pem({}));
  EXPECT_NE(refusal(kept).find("is refused by admin.crl: unable to get certificate CRL"), std::string::npos);

  // The file is read at every reload: with the CRL renewed, the kept operator is back.
  reload_with_crl(ca.crl_pem({.revoked = {{7}}}));
  EXPECT_EQ(get_tls("/api/echo", &kept).result_int(), 200);
}

// admin.crl is compared every tls.revocation.refresh_seconds, as tls.crl is: a published CRL takes effect without
// a SIGHUP, and a file that cannot be used leaves the last good one in force.
TEST_F(AdminClientCertificateTest, AChangedAdminCrlIsReadWithoutAReload) {
  const RevocableOperators operators(*this, "Watched Operator CA");
  const auto& [ca, kept, withdrawn] = operators;
  config_.admin->crl = {dir_.write("operators.crl", ca.crl_pem({}))};
  config_.tls.revocation.refresh = 1s;
  guarded_->use_tls_context(auth::make_admin_context(config_));  // as at start-up
  boost::asio::io_context watch_io;
  int installed = 0;
  AdminCrlWatch watch(
      watch_io, [&] { return std::make_shared<const config::Config>(config_); },
      [&](std::shared_ptr<SSL_CTX> context) {
        ++installed;
        guarded_->use_tls_context(std::move(context));
      });
  watch.start();
  auto next_refresh = [&] { watch_io.run_for(1500ms); };

  next_refresh();
  EXPECT_EQ(installed, 0);  // unchanged files are not read again
  EXPECT_EQ(get_tls("/api/echo", &withdrawn).result_int(), 200);

  dir_.write("operators.crl", ca.crl_pem({.revoked = {{7}}}));
  next_refresh();
  EXPECT_EQ(installed, 1);
  EXPECT_EQ(get_tls("/api/echo", &withdrawn).result_int(), 401);
  EXPECT_EQ(get_tls("/api/echo", &kept).result_int(), 200);

  dir_.write("operators.crl", "-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n");
  next_refresh();
  next_refresh();
  EXPECT_EQ(installed, 1);  // refused once, not retried until the file changes again
  EXPECT_EQ(get_tls("/api/echo", &withdrawn).result_int(), 401);
  EXPECT_EQ(get_tls("/api/echo", &kept).result_int(), 200);
  watch.stop();
}

TEST(RevocationReadiness, FailsWhileACrlIsExpired) {
  auth::testing::TempDir dir;
  auth::testing::TestCa ca("Ready CA");
  config::TlsConfig tls;
  tls.client_ca = dir.write("ca.pem", ca.cert_pem());
  tls.crl = {dir.write("ca.crl", ca.crl_pem({}))};
  EXPECT_TRUE(revocation_readiness(*auth::RevocationChecker::create(tls)).ok);
  tls.crl = {dir.write("old.crl", ca.crl_pem({.this_update_offset = -7200s, .next_update_offset = -60s}))};
  auto check = revocation_readiness(*auth::RevocationChecker::create(tls));
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.name, "revocation");
  EXPECT_NE(check.detail.find("CN=Ready CA"), std::string::npos) << check.detail;
}

}  // namespace
}  // namespace easedge::proxy
