// OpenSSL contexts: the device-facing server context and the Exchange-facing client context.
#pragma once

#include "auth/certificate_validator.h"
#include "auth/openssl.h"
#include "config/config.h"

#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace easedge::auth {

// What the start-up report says about the server certificate.
struct ServerCertificateSummary {
  std::string subject;
  std::string issuer;
  std::string not_after;   // human readable
  std::string key_type;    // "EC P-256", "RSA 2048"
};

// The device-facing context: server chain + key, TLS 1.2 (suites from tls.ciphers) and 1.3, client certificates
// requested per tls.client_certificate but never enforced in the handshake (the proxy refuses per request, with a
// reason).
// Throws config::ConfigError naming the key for unreadable files or a key that does not match the certificate.
OwnedSslCtx make_server_context(const config::Config& config, const CertificateValidator& validator,
                                ServerCertificateSummary* summary);

// The admin listener's context (null without admin.certificate): its chain + key, tls.min_version and
// tls.ciphers, no resumption; with admin.auth: client_certificate it asks for (never requires) a certificate
// and verifies it against admin.client_ca, leaving the verdict in SSL_get_verify_result for the session.
// Throws config::ConfigError naming the admin key for unreadable files or a key that does not match.
OwnedSslCtx make_admin_context(const config::Config& config);

// The Exchange-facing context: verifies the upstream against upstream.ca (or the system store).
OwnedSslCtx make_upstream_context(const config::Config& config);

// A server-side SSL for one device connection.
OwnedSsl make_server_ssl(SSL_CTX* context);

// A client-side SSL for one upstream connection: SNI and certificate name check against `server_name`.
OwnedSsl make_upstream_ssl(SSL_CTX* context, const std::string& server_name);

}  // namespace easedge::auth
