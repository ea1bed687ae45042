// Builds the OpenSSL contexts once per configuration; every connection shares them.
#include "auth/tls_context.h"

#include "auth/revocation/crl.h"
#include "auth/session_ticket_keys.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <optional>
#include <sstream>

namespace easedge::auth {

namespace {

// Accepts every peer chain during the handshake: verification happens afterwards in CertificateValidator,
// so a device with a bad certificate still gets an HTTP answer that says why.
int accept_during_handshake(X509_STORE_CTX*, void*) { return 1; }

std::string key_description(EVP_PKEY* key) {
  if (key == nullptr) return "none";
  int bits = EVP_PKEY_get_bits(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: return "RSA " + std::to_string(bits);
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t length = 0;
      EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &length);
      return std::string("EC ") + group;
    }
    case EVP_PKEY_ED25519: return "Ed25519";
    default: return "other (" + std::to_string(bits) + " bits)";
  }
}

// The whole file, or nothing when it cannot be opened and read.
std::optional<std::string> read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) return std::nullopt;
  return std::move(bytes).str();
}

// tls.session_ticket_keys: the file's keys, or a ConfigError naming the file and the line.
SessionTicketKeys read_session_ticket_keys(const config::Config& config) {
  const auto& path = config.tls.session_ticket_keys;
  auto text = read_whole_file(path);
  if (!text) throw config::ConfigError(config.source_file, "tls.session_ticket_keys", "cannot read '" + path.string() + "'");
  SessionTicketKeyProblem problem;
  auto keys = parse_session_ticket_keys(*text, problem);
  if (!keys)
    throw config::ConfigError(config.source_file, "tls.session_ticket_keys",
                              "'" + path.string() + "'" +
                                  (problem.line == 0 ? "" : " line " + std::to_string(problem.line)) + ": " +
                                  problem.problem);
  return std::move(*keys);
}

void apply_common_options(SSL_CTX* ctx, const std::string& min_version) {
  SSL_CTX_set_min_proto_version(ctx, min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  // RELEASE_BUFFERS: an idle connection holds no 16 KB record buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read ahead: one read() takes a record's header and body (and what follows) instead of two. TlsStream
  // checks SSL_has_pending before it waits on the socket, so bytes OpenSSL holds are never waited for.
  SSL_CTX_set_read_ahead(ctx, 1);
  // IGNORE_UNEXPECTED_EOF: a device that drops its connection without close_notify has just left (no request
  // is framed by the connection's end); the upstream context takes it out again.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
}

// A certificate chain and its private key from `certificate` and `private_key`; a ConfigError names the key
// (`certificate_key`, `private_key_key`) for an unreadable file or a key that does not match.
void use_certificate_and_key(SSL_CTX* ctx, const std::filesystem::path& file, const std::string& certificate_key,
                             const std::filesystem::path& certificate, const std::string& private_key_key,
                             const std::filesystem::path& private_key) {
  if (SSL_CTX_use_certificate_chain_file(ctx, certificate.c_str()) != 1)
    throw config::ConfigError(file, certificate_key,
                              "cannot load '" + certificate.string() + "': " + last_openssl_error());
  if (SSL_CTX_use_PrivateKey_file(ctx, private_key.c_str(), SSL_FILETYPE_PEM) != 1)
    throw config::ConfigError(file, private_key_key,
                              "cannot load '" + private_key.string() + "': " + last_openssl_error());
  if (SSL_CTX_check_private_key(ctx) != 1)
    throw config::ConfigError(file, private_key_key, "'" + private_key.string() +
                                                         "' does not match the certificate in " + certificate_key);
}

// Operator certificates: OpenSSL verifies the chain against admin.client_ca and keeps the result
// (SSL_get_verify_result), but the handshake goes on whatever it is, as nginx's "optional" verify: the admin
// session decides per request, so /healthz stays reachable without a certificate and a refused operator reads
// an HTTP answer with the reason instead of a TLS alert.
int keep_verify_result(int, X509_STORE_CTX*) { return 1; }

// admin.crl: each file's CRL (PEM or DER, as Crl::parse takes it) in the operator store, and OpenSSL then checks
// every operator certificate against its issuer's CRL. Fail closed: an issuer with no CRL here, or one past its
// nextUpdate, lets none of its operators in. The files are read again at every reload, with the context.
void add_operator_crls(X509_STORE* store, const config::Config& config) {
  for (const auto& path : config.admin->crl) {
    auto bytes = read_whole_file(path);
    if (!bytes) throw config::ConfigError(config.source_file, "admin.crl", "cannot read '" + path.string() + "'");
    auto crl = Crl::parse(*bytes, path.string());
    if (!crl) throw config::ConfigError(config.source_file, "admin.crl", "'" + path.string() + "': " + crl.error());
    X509_STORE_add_crl(store, (*crl)->native());
  }
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
}

}  // namespace

OwnedSslCtx make_server_context(const config::Config& config, const CertificateValidator& validator,
                                ServerCertificateSummary* summary) {
  const auto& tls = config.tls;
  const auto& file = config.source_file;
  OwnedSslCtx ctx(SSL_CTX_new(TLS_server_method()));
  apply_common_options(ctx.get(), tls.min_version);
  ERR_clear_error();
  // TLS 1.2 suites only; TLS 1.3 keeps OpenSSL's suites (all AEAD). The loader already checked the list.
  if (SSL_CTX_set_cipher_list(ctx.get(), tls.ciphers.c_str()) != 1)
    throw config::ConfigError(file, "tls.ciphers", "selects no TLS 1.2 cipher suite: " + last_openssl_error());
  use_certificate_and_key(ctx.get(), file, "tls.certificate", tls.certificate, "tls.private_key", tls.private_key);

  // Resumption by session tickets only (stateless, as nginx's default): no server-side session cache to lock
  // on every handshake or to hold memory per device. Tickets need a fixed id context with client certificates.
  static constexpr unsigned char session_context[] = "easedge";
  SSL_CTX_set_session_id_context(ctx.get(), session_context, sizeof session_context - 1);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  if (tls.session_tickets) {
    // One TLS 1.3 ticket per handshake instead of OpenSSL's two: a device resumes one connection at a time,
    // and every ticket costs the server a session copy and an encryption (measured: a third of the CPU of a
    // full handshake).
    SSL_CTX_set_num_tickets(ctx.get(), 1);
    // Shared keys: a ticket from any node of a farm, or from before a reload or restart, resumes here.
    if (!tls.session_ticket_keys.empty()) use_session_ticket_keys(ctx.get(), read_session_ticket_keys(config));
  } else {
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx.get(), 0);
  }

  if (tls.client_certificate == config::ClientCertificateMode::off) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_cert_verify_callback(ctx.get(), accept_during_handshake, nullptr);
    SSL_CTX_set_client_CA_list(ctx.get(), validator.client_ca_names());
  }

  if (summary != nullptr) {
    X509* cert = SSL_CTX_get0_certificate(ctx.get());
    summary->subject = rfc2253(X509_get_subject_name(cert));
    summary->issuer = rfc2253(X509_get_issuer_name(cert));
    summary->not_after = format_time(time_of(X509_get0_notAfter(cert)).value_or(SystemTime{}));
    summary->key_type = key_description(SSL_CTX_get0_privatekey(ctx.get()));
  }
  return ctx;
}

OwnedSslCtx make_admin_context(const config::Config& config) {
  if (!config.admin || config.admin->certificate.empty()) return nullptr;
  const auto& admin = *config.admin;
  const auto& file = config.source_file;
  OwnedSslCtx ctx(SSL_CTX_new(TLS_server_method()));
  apply_common_options(ctx.get(), config.tls.min_version);
  ERR_clear_error();
  if (SSL_CTX_set_cipher_list(ctx.get(), config.tls.ciphers.c_str()) != 1)
    throw config::ConfigError(file, "tls.ciphers", "selects no TLS 1.2 cipher suite: " + last_openssl_error());
  use_certificate_and_key(ctx.get(), file, "admin.certificate", admin.certificate, "admin.private_key",
                          admin.private_key);
  // No resumption: every connection presents its certificate and has it verified; the console needs no speed.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  if (admin.auth != config::AdminAuth::client_certificate) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    return ctx;
  }
  if (SSL_CTX_load_verify_locations(ctx.get(), admin.client_ca.c_str(), nullptr) != 1)
    throw config::ConfigError(file, "admin.client_ca",
                              "cannot load '" + admin.client_ca.string() + "': " + last_openssl_error());
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(admin.client_ca.c_str());
  if (names == nullptr)
    throw config::ConfigError(file, "admin.client_ca",
                              "'" + admin.client_ca.string() + "' holds no PEM certificate: " + last_openssl_error());
  SSL_CTX_set_client_CA_list(ctx.get(), names);  // the CAs a browser offers certificates from
  // As tls.client_ca: an intermediate listed there is a trust anchor, so a bundle of only the issuing CA works.
  X509_STORE_set_flags(SSL_CTX_get_cert_store(ctx.get()), X509_V_FLAG_PARTIAL_CHAIN);
  if (!admin.crl.empty()) add_operator_crls(SSL_CTX_get_cert_store(ctx.get()), config);
  static constexpr unsigned char session_context[] = "easedge-admin";
  SSL_CTX_set_session_id_context(ctx.get(), session_context, sizeof session_context - 1);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, keep_verify_result);
  return ctx;
}

OwnedSslCtx make_upstream_context(const config::Config& config) {
  OwnedSslCtx ctx(SSL_CTX_new(TLS_client_method()));
  apply_common_options(ctx.get(), "1.2");
  // A response without Content-Length or chunked coding ends when the connection does, and is complete only
  // with Exchange's close_notify (RFC 9112 section 9.8): a bare FIN, which anyone on the path can forge, must
  // read as an error, so the device's connection is cut instead of given a body's end.
  SSL_CTX_clear_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (!config.upstream.ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), config.upstream.ca.c_str(), nullptr) != 1)
      throw config::ConfigError(config.source_file, "upstream.ca",
                                "cannot load '" + config.upstream.ca.string() + "': " + last_openssl_error());
  } else {
    SSL_CTX_set_default_verify_paths(ctx.get());
  }
  // Upstream connections are pooled and long-lived: client-side session caching buys little.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  return ctx;
}

OwnedSsl make_server_ssl(SSL_CTX* context) {
  OwnedSsl ssl(SSL_new(context));
  SSL_set_accept_state(ssl.get());
  return ssl;
}

OwnedSsl make_upstream_ssl(SSL_CTX* context, const std::string& server_name) {
  OwnedSsl ssl(SSL_new(context));
  SSL_set_connect_state(ssl.get());
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(server_name.c_str());
  if (ip != nullptr) {
    ASN1_OCTET_STRING_free(ip);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), server_name.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl.get(), server_name.c_str());
    SSL_set1_host(ssl.get(), server_name.c_str());
  }
  return ssl;
}

}  // namespace easedge::auth
