// Builds the per-configuration runtime and describes it for the start-up report.
#include "proxy/runtime.h"

#include <boost/asio/io_context.hpp>

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

// Resolved once per configuration: a DNS lookup must never sit on a request's path.
std::vector<boost::asio::ip::tcp::endpoint> resolve_upstream(const config::Config& config) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto results = resolver.resolve(config.upstream.host, std::to_string(config.upstream.port), ec);
  if (ec)
    throw config::ConfigError(config.source_file, "upstream.url",
                              "cannot resolve '" + config.upstream.host + "': " + ec.message());
  std::vector<boost::asio::ip::tcp::endpoint> endpoints;
  for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  return endpoints;
}

}  // namespace

std::shared_ptr<const Runtime> Runtime::build(config::Config config) {
  auto runtime = std::make_shared<Runtime>();
  runtime->validator = std::make_unique<auth::CertificateValidator>(
      config.tls, config.source_file, config.limits.verified_certificate_cache_entries);
  runtime->server_context = auth::make_server_context(config, *runtime->validator, &runtime->server_certificate);
  if (config.upstream.scheme == "https") runtime->upstream_context = auth::make_upstream_context(config);
  runtime->upstream_endpoints = resolve_upstream(config);
  runtime->config = std::move(config);
  return runtime;
}

std::vector<std::string> Runtime::describe() const {
  std::vector<std::string> lines;
  lines.push_back("server certificate: " + server_certificate.subject + " (" + server_certificate.key_type +
                  ", issued by " + server_certificate.issuer + ", expires " + server_certificate.not_after + ")");
  lines.push_back(std::string("client certificates: ") + mode_name(config.tls.client_certificate) +
                  ", TLS " + config.tls.min_version + "+");
  for (const auto& subject : validator->trusted_subjects()) lines.push_back("trusted CA: " + subject);
  std::string upstream = "upstream: " + config.upstream.url + " ->";
  for (const auto& endpoint : upstream_endpoints)
    upstream += " " + endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  upstream += config.upstream.auth == config::UpstreamAuth::kerberos ? " (identity: Kerberos delegation)"
                                                                     : " (identity: X-Forwarded-User)";
  lines.push_back(upstream);
  lines.push_back("upload limit: " + std::to_string(config.limits.upload_read_ahead_bytes) +
                  " bytes; upstream response timeout " + std::to_string(config.timeouts.upstream_response.count()) +
                  " s");
  return lines;
}

}  // namespace easedge::proxy
