// The admin listener: HTTP or HTTPS (loopback by default) serving /healthz, /readyz, /metrics and further routes (the console).
#pragma once

#include "config/config.h"
#include "proxy/metrics.h"

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace easedge::auth {
class RevocationChecker;
}

namespace easedge::proxy {

// One readiness condition, e.g. {"upstream", false, "connect 10.0.0.5:443: connection refused"}.
struct ReadinessCheck {
  std::string name;
  bool ok = true;
  std::string detail;
};

// Called for every /readyz on the admin server's thread: must be cheap and must not block
// (report state the proxy already tracks, do not probe the network here).
using ReadinessProbe = std::function<std::vector<ReadinessCheck>()>;

// The readiness condition "revocation": fails while a loaded CRL is past nextUpdate + crl_grace.
ReadinessCheck revocation_readiness(const auth::RevocationChecker& checker);

// One request to the admin listener as routes see it. Views are valid until the route answers.
struct AdminRequest {
  std::string_view method;  // "GET", "HEAD" or "POST"
  std::string_view target;
  std::string_view body;    // at most admin.explain_max_bytes
};

// What the server answers for one request: status, content type, body.
struct AdminAnswer {
  unsigned status;
  std::string content_type;
  std::string body;
};

// Routes beyond /healthz, /readyz and /metrics (the operator console). Returns false when the target is not
// theirs; otherwise calls `done` exactly once, from any thread. Paths under /api/ need admin.auth's credential
// (with auth: client_certificate, every path but the three probes does).
using AdminRoutes = std::function<bool(const AdminRequest&, std::function<void(AdminAnswer)> done)>;

// What the TLS handshake of one admin connection said about the client's certificate.
struct OperatorCertificate {
  bool presented = false;
  bool verified = false;  // chains to admin.client_ca, and admin.crl (if any) does not revoke it
  bool revocation_problem = false;  // not verified because of admin.crl: revoked, or no current CRL of its issuer
  std::string subject;    // RFC 2253; empty without a certificate
  std::string problem;    // why it is not verified (OpenSSL's verify error)
};

class AdminServer : public std::enable_shared_from_this<AdminServer> {
public:
  // Binds admin.host:admin.port now (port 0 = ephemeral). Throws config::ConfigError naming "admin.listen"
  // when the address cannot be bound. `timeouts.handshake` bounds a TLS handshake, `timeouts.request_header`
  // reading one request (slow clients). `tls` (Runtime::admin_context) makes it speak HTTPS; null, plain HTTP.
  static std::shared_ptr<AdminServer> create(boost::asio::io_context& io, const config::AdminConfig& admin,
                                             const MetricsRegistry& metrics, ReadinessProbe readiness,
                                             const config::TimeoutsConfig& timeouts, AdminRoutes routes = {},
                                             std::shared_ptr<SSL_CTX> tls = {});

  // Logs "admin listening on HOST:PORT" (the bound port) and starts accepting.
  void start();
  // Stops accepting; connections finish the answer they are writing. Safe from any thread.
  void stop();
  // New connections use `tls` (a reload's context: renewed certificate or CA files); open ones keep theirs.
  // Only for a server that speaks HTTPS. Safe from any thread.
  void use_tls_context(std::shared_ptr<SSL_CTX> tls);

  boost::asio::ip::tcp::endpoint local_endpoint() const { return endpoint_; }

  // What the server answers for one request target (GET/HEAD) of its own: status, content type, body.
  using Answer = AdminAnswer;
  Answer answer(std::string_view target) const;

  // Whether an `Authorization` header value carries admin.auth's token (always true with auth: none).
  bool authorized(std::string_view authorization) const;
  // Why a request for `path` is refused (the 401 body), or nullopt when admin.auth lets it through: the probes
  // need nothing; with auth: token, /api/... needs the token; with client_certificate, everything else needs a
  // certificate that chains to admin.client_ca.
  std::optional<std::string> refusal(std::string_view path, std::string_view authorization,
                                     const OperatorCertificate& peer) const;
  config::AdminAuth auth() const { return admin_.auth; }
  const config::AdminConfig& config() const { return admin_; }
  const AdminRoutes& routes() const { return routes_; }
  std::size_t body_limit() const { return admin_.explain_max_bytes; }
  const config::TimeoutsConfig& timeouts() const { return timeouts_; }

private:
  AdminServer(boost::asio::io_context& io, const config::AdminConfig& admin, const MetricsRegistry& metrics,
              ReadinessProbe readiness, const config::TimeoutsConfig& timeouts, AdminRoutes routes,
              std::shared_ptr<SSL_CTX> tls);
  void accept();

  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::ip::tcp::endpoint endpoint_;
  const config::AdminConfig admin_;
  const MetricsRegistry& metrics_;
  ReadinessProbe readiness_;
  const config::TimeoutsConfig timeouts_;
  AdminRoutes routes_;
  std::shared_ptr<SSL_CTX> tls_;  // touched only on the acceptor's executor
};

}  // namespace easedge::proxy
