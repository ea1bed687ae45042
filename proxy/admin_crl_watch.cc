// admin.crl kept current: compare the files' signatures each refresh, rebuild the admin context on a change.
#include "proxy/admin_crl_watch.h"

#include "auth/tls_context.h"

#include <spdlog/spdlog.h>

namespace easedge::proxy {

AdminCrlWatch::AdminCrlWatch(boost::asio::io_context& io, CurrentConfig current, Install install)
    : timer_(io), current_(std::move(current)), install_(std::move(install)) {}

void AdminCrlWatch::start() {
  remember_files();
  arm();
}

void AdminCrlWatch::stop() { timer_.cancel(); }

void AdminCrlWatch::remember_files() { built_from_ = current_signatures(current_().get()); }

std::vector<auth::FileSignature> AdminCrlWatch::current_signatures(const config::Config* config) const {
  std::vector<auth::FileSignature> signatures;
  if (config == nullptr || !config->admin) return signatures;
  for (const auto& file : config->admin->crl) signatures.push_back(auth::signature_of(file));
  return signatures;
}

void AdminCrlWatch::arm() {
  auto config = current_();
  timer_.expires_after(config ? config->tls.revocation.refresh : config::RevocationConfig{}.refresh);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) check();
  });
}

void AdminCrlWatch::check() {
  auto config = current_();
  auto now = current_signatures(config.get());
  if (config && !now.empty() && now != built_from_) {
    // Remembered before the attempt: a file that cannot be used is reported once, not at every refresh.
    built_from_ = std::move(now);
    try {
      install_(auth::make_admin_context(*config));
      spdlog::info("admin.crl changed: re-read, new admin connections are checked against it");
    } catch (const std::exception& e) {
      spdlog::error("admin.crl changed but cannot be used; the CRLs read before stay in force: {}", e.what());
    }
  }
  arm();
}

}  // namespace easedge::proxy
