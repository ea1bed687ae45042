// The admin listener: plain HTTP (loopback by default) serving /healthz, /readyz and /metrics.
#pragma once

#include "config/config.h"
#include "proxy/metrics.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <memory>
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

class AdminServer : public std::enable_shared_from_this<AdminServer> {
public:
  // Binds admin.host:admin.port now (port 0 = ephemeral). Throws config::ConfigError naming "admin.listen"
  // when the address cannot be bound. `request_timeout` bounds reading one request (slow clients).
  static std::shared_ptr<AdminServer> create(boost::asio::io_context& io, const config::AdminConfig& admin,
                                             const MetricsRegistry& metrics, ReadinessProbe readiness,
                                             std::chrono::seconds request_timeout);

  // Logs "admin listening on HOST:PORT" (the bound port) and starts accepting.
  void start();
  // Stops accepting; connections finish the answer they are writing. Safe from any thread.
  void stop();

  boost::asio::ip::tcp::endpoint local_endpoint() const { return endpoint_; }

  // What the server answers for one request target (GET/HEAD): status, content type, body. For tests.
  struct Answer {
    unsigned status;
    std::string content_type;
    std::string body;
  };
  Answer answer(std::string_view target) const;

private:
  AdminServer(boost::asio::io_context& io, const MetricsRegistry& metrics, ReadinessProbe readiness,
              std::chrono::seconds request_timeout);
  void accept();

  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::ip::tcp::endpoint endpoint_;
  const MetricsRegistry& metrics_;
  ReadinessProbe readiness_;
  std::chrono::seconds request_timeout_;
};

}  // namespace easedge::proxy
