// Everything built from one configuration that connections use: TLS contexts, validator, directory, policy.
// Immutable once built; SIGHUP builds a new one aside and swaps it in, and open connections keep theirs.
#pragma once

#include "auth/certificate_validator.h"
#include "auth/kerberos/delegator.h"
#include "auth/revocation/revocation_checker.h"
#include "auth/tls_context.h"
#include "config/config.h"
#include "eas/policy.h"
#include "mapping/account_mapper.h"
#include "proxy/access_log.h"
#include "proxy/forwarded_headers.h"
#include "proxy/upstream_servers.h"

#include <memory>
#include <vector>

namespace easedge::proxy {

struct Runtime {
  config::Config config;
  std::unique_ptr<auth::CertificateValidator> validator;
  auth::OwnedSslCtx server_context;
  auth::OwnedSslCtx upstream_context;  // null when no server is https://
  // The admin listener's (null: plain HTTP or no admin listener). Shared: the listener keeps the one it started
  // with, or the one of a reload that left admin.* unchanged.
  std::shared_ptr<SSL_CTX> admin_context;
  auth::ServerCertificateSummary server_certificate;
  std::shared_ptr<UpstreamServers> upstreams;       // Exchange servers with their health and load
  std::shared_ptr<auth::RevocationChecker> revocation;
  std::shared_ptr<mapping::AccountMapper> mapper;   // null: identity is the certificate's UPN
  std::unique_ptr<eas::Policy> eas_policy;
  std::shared_ptr<AccessLogWriter> access_log;      // null: access log off; shared across reloads
  HeaderPolicy header_policy;                       // which device headers never reach Exchange

  // Builds and checks everything `config` names. Throws config::ConfigError naming the key on any problem,
  // so `--check-config` and SIGHUP refuse a configuration the proxy could not serve with.
  // With `previous` (SIGHUP), an unchanged access log destination keeps its writer, reopened (log rotation),
  // so connections of both configurations write through one writer.
  static std::shared_ptr<const Runtime> build(config::Config config, const Runtime* previous = nullptr);

  // The lines of the start-up report (one readable block).
  std::vector<std::string> describe() const;
};

}  // namespace easedge::proxy
