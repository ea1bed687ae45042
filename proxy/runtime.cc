// Builds the per-configuration runtime and describes it for the start-up report.
#include "proxy/runtime.h"

#include "proxy/endpoint_text.h"

#include <algorithm>

namespace easedge::proxy {

namespace {

const char* mode_name(config::ClientCertificateMode mode) {
  switch (mode) {
    case config::ClientCertificateMode::required: return "required";
    case config::ClientCertificateMode::optional: return "optional";
    case config::ClientCertificateMode::off: return "off";
  }
  return "?";
}

const char* strong_binding_name(config::StrongBinding mode) {
  switch (mode) {
    case config::StrongBinding::disabled: return "disabled";
    case config::StrongBinding::compatibility: return "compatibility";
    case config::StrongBinding::full: return "full";
  }
  return "?";
}


}  // namespace

std::shared_ptr<const Runtime> Runtime::build(config::Config config, const Runtime* previous) {
  auto runtime = std::make_shared<Runtime>();
  runtime->validator = std::make_unique<auth::CertificateValidator>(
      config.tls, config.source_file, config.limits.verified_certificate_cache_entries);
  runtime->server_context = auth::make_server_context(config, *runtime->validator, &runtime->server_certificate);
  runtime->admin_context = auth::make_admin_context(config);
  bool https = std::any_of(config.upstream.servers.begin(), config.upstream.servers.end(),
                           [](const auto& server) { return server.scheme == "https"; });
  if (https) runtime->upstream_context = auth::make_upstream_context(config);
  runtime->upstreams = UpstreamServers::build(config, previous != nullptr ? previous->upstreams.get() : nullptr);
  runtime->revocation = auth::RevocationChecker::create(config.tls);
  // An unchanged LDAP directory keeps its mapper across SIGHUP: its cache is what serves devices through a DC
  // outage. An LDIF directory is read again (the reload is how an edited file takes effect).
  bool same_ldap_mapping = previous != nullptr && previous->mapper && config.mapping && previous->config.mapping &&
                           config.mapping->directory.ldap && *config.mapping == *previous->config.mapping;
  if (same_ldap_mapping)
    runtime->mapper = previous->mapper;
  else if (config.mapping)
    runtime->mapper = mapping::make_account_mapper(*config.mapping);
  runtime->eas_policy = std::make_unique<eas::Policy>(config.eas);
  const auto& upstream = config.upstream;
  runtime->header_policy = HeaderPolicy(upstream.strip_headers,
                                        {.identity_header = upstream.identity_header,
                                         .identity_format = upstream.identity_format,
                                         .client_cert_header = upstream.client_cert_header,
                                         .path_prefix = upstream.servers.front().path_prefix,
                                         .keep_alive = upstream.keepalive});
  if (!config.log.access.empty()) {
    bool same_log = previous != nullptr && previous->access_log && previous->config.log.access == config.log.access &&
                    previous->config.log.format == config.log.format;
    if (same_log) {
      runtime->access_log = previous->access_log;
      if (auto error = runtime->access_log->reopen())
        throw config::ConfigError(config.source_file, "log.access", "cannot reopen: " + error.message());
    } else {
      try {
        runtime->access_log = std::make_shared<AccessLogWriter>(config.log.access, config.log.format);
      } catch (const std::exception& e) {
        throw config::ConfigError(config.source_file, "log.access", e.what());
      }
    }
  }
  runtime->config = std::move(config);
  return runtime;
}

std::vector<std::string> Runtime::describe() const {
  std::vector<std::string> lines;
  lines.push_back("server certificate: " + server_certificate.subject + " (" + server_certificate.key_type +
                  ", issued by " + server_certificate.issuer + ", expires " + server_certificate.not_after + ")");
  lines.push_back(std::string("client certificates: ") + mode_name(config.tls.client_certificate) +
                  ", TLS " + config.tls.min_version + "+, session tickets " +
                  (config.tls.session_tickets ? "on (one per handshake)" : "off"));
  for (const auto& subject : validator->trusted_subjects()) lines.push_back("trusted CA: " + subject);
  auto crls = revocation->loaded();
  if (crls.empty() && config.tls.crl.empty() && !config.tls.revocation.fetch_cdp && !config.tls.revocation.ocsp)
    lines.push_back("revocation: not checked (no tls.crl, fetch_cdp or ocsp configured)");
  for (const auto& crl : crls) {
    std::string next = crl.next_update ? auth::format_time(*crl.next_update) : std::string("none");
    lines.push_back(std::string(crl.delta ? "delta CRL: " : "CRL: ") + crl.issuer + " from " + crl.source + ", " +
                    std::to_string(crl.entries) + " revoked, nextUpdate " + next);
  }
  if (config.tls.revocation.ocsp) lines.push_back("revocation: OCSP from the certificate's AIA");
  if (config.mapping) {
    const auto& m = *config.mapping;
    std::string source = m.directory.ldif ? "LDIF " + m.directory.ldif->string() : "LDAP " + m.directory.ldap->url;
    lines.push_back("directory: " + source + "; strong binding " + strong_binding_name(m.strong_binding) +
                    (m.require_group.empty() ? "" : "; require_group " + m.require_group));
  } else {
    lines.push_back("directory: none (identity is the certificate's UPN)");
  }
  if (access_log) lines.push_back("access log: " + config.log.access);
  if (const auto& admin = config.admin) {
    static constexpr const char* auth_names[] = {"none", "token", "client_certificate"};
    lines.push_back(std::string("admin listener: ") + (admin_context ? "HTTPS" : "plain HTTP") + ", auth " +
                    auth_names[static_cast<int>(admin->auth)] +
                    (admin->client_ca.empty() ? "" : " (operator CAs from " + admin->client_ca.string() + ")") +
                    (admin->crl.empty() ? "" : ", " + std::to_string(admin->crl.size()) + " operator CRL file(s)"));
  }
  for (std::size_t i = 0; i < upstreams->size(); ++i) {
    const auto& server = (*upstreams)[i];
    std::string line = "upstream: " + server.config.url + " ->";
    for (const auto& endpoint : server.endpoints)
      line.append(" ").append(endpoint_text(endpoint));
    line += server.kerberos ? " (identity: Kerberos delegation as " + config.upstream.kerberos->principal + " to " +
                                  server.config.service + ")"
                            : " (identity: " + config.upstream.identity_header + ")";
    lines.push_back(line);
  }
  if (!config.upstream.keepalive) lines.push_back("upstream connections: a fresh one per request (upstream.keepalive: false)");
  if (upstreams->size() > 1)
    lines.push_back("upstream balancing: least connections; a server whose connect fails is skipped for " +
                    std::to_string(config.upstream.retry.count()) + " s" +
                    (config.upstream.health_check ? "; checked with GET " + config.upstream.health_check->path +
                                                        " every " +
                                                        std::to_string(config.upstream.health_check->interval.count()) +
                                                        " s"
                                                  : std::string()));
  if (!config.upstream.source_addresses.empty()) {
    std::string line = "upstream source addresses:";
    for (const auto& address : config.upstream.source_addresses) line += " " + address;
    lines.push_back(line);
  }
  lines.push_back("upload limit: " + std::to_string(config.limits.upload_read_ahead_bytes) +
                  " bytes; upstream response timeout " + std::to_string(config.timeouts.upstream_response.count()) +
                  " s");
  return lines;
}

}  // namespace easedge::proxy
