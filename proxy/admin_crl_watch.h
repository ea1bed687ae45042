// Re-reads admin.crl when one of its files changes, as tls.crl files are, so a CRL published for the operators'
// CA reaches the admin listener without a SIGHUP.
#pragma once

#include "auth/revocation/file_signature.h"
#include "config/config.h"

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <memory>
#include <vector>

namespace easedge::proxy {

class AdminCrlWatch {
public:
  // The configuration the admin listener runs with; null while there is nothing to watch (no admin listener,
  // or admin settings a reload changed, which wait for a restart).
  using CurrentConfig = std::function<std::shared_ptr<const config::Config>()>;
  // Hands the admin listener a context built from the files as they are now, for its new connections.
  using Install = std::function<void(std::shared_ptr<SSL_CTX>)>;

  AdminCrlWatch(boost::asio::io_context& io, CurrentConfig current, Install install);

  // Takes the files as they are now as the ones the listener's context was built from, then compares every
  // tls.revocation.refresh_seconds.
  void start();
  void stop();
  // After a reload built the listener's context again.
  void remember_files();

private:
  void arm();
  void check();
  std::vector<auth::FileSignature> current_signatures(const config::Config* config) const;

  boost::asio::steady_timer timer_;
  CurrentConfig current_;
  Install install_;
  std::vector<auth::FileSignature> built_from_;
};

}  // namespace easedge::proxy
