// Plain configuration structs for easedge: what the YAML file says, validated, with paths resolved.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace easedge::config {

// A configuration problem, always tied to the file and the key that caused it.
class ConfigError : public std::runtime_error {
public:
  ConfigError(const std::filesystem::path& file, const std::string& key, const std::string& problem);
  const std::string& key() const { return key_; }

private:
  std::string key_;
};

struct ListenerConfig {
  std::string host;  // numeric address or name; "[::1]" brackets are removed
  std::uint16_t port = 0;
  bool proxy_protocol = false;  // expect a PROXY protocol v2 header (behind an L4 load balancer)
};

// IIS "SSL Settings": Require / Accept / Ignore client certificates.
enum class ClientCertificateMode { required, optional, off };

enum class RevocationFallback { deny, allow };

struct RevocationConfig {
  bool fetch_cdp = false;
  bool ocsp = false;
  std::chrono::seconds refresh{60};
  RevocationFallback on_unavailable = RevocationFallback::deny;
  std::chrono::seconds crl_grace{0};           // how long past nextUpdate a CRL still counts
  std::chrono::seconds fetch_timeout{5};       // one CDP/OCSP HTTP exchange
  std::uint64_t max_crl_bytes = 32 * 1024 * 1024;
  std::filesystem::path cache_dir;             // fetched CRLs kept across restarts; empty = none
};

struct TlsConfig {
  std::filesystem::path certificate;   // server leaf + intermediates (PEM)
  std::filesystem::path private_key;
  std::filesystem::path client_ca;     // CAs trusted for device certificates (PEM bundle)
  ClientCertificateMode client_certificate = ClientCertificateMode::required;
  std::vector<std::filesystem::path> crl;  // PEM or DER
  RevocationConfig revocation;
  std::string min_version = "1.2";     // "1.2" | "1.3"
  bool session_tickets = true;         // resumption by stateless tickets (one per TLS 1.3 handshake)
  // Ticket keys shared by a farm's nodes (auth/session_ticket_keys.h); empty = a random key per configuration.
  std::filesystem::path session_ticket_keys;
  // TLS 1.2 cipher list (OpenSSL syntax); the default admits forward-secret AEAD suites only. TLS 1.3 suites
  // are all AEAD and stay OpenSSL's.
  std::string ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
};

enum class UpstreamAuth { forward_headers, kerberos };

// Which name of the mapped account goes in upstream.identity_header.
enum class IdentityFormat { upn, sam_account_name, upn_local_part, mail };

struct KerberosConfig {
  std::filesystem::path keytab;
  std::string principal;                        // the proxy's service account, user@REALM
  std::string service;                          // Exchange's SPN for every server, HTTP/host; empty = per server
  std::chrono::seconds credential_refresh_margin{300};  // renew before expiry by this much
  std::size_t cache_max_entries = 100000;       // delegated credentials kept per process
  std::size_t worker_threads = 2;               // KDC calls run here, never on I/O threads
};

// One Exchange server: where to connect and what to verify and delegate to there.
struct UpstreamServerConfig {
  std::string url;              // as written
  std::string scheme;           // "http" | "https"
  std::string host;
  std::uint16_t port = 0;
  std::string path_prefix;      // the url's path without a trailing '/' ("/SOGo"); "" = none
  std::string server_name;      // SNI and name check for https; defaults to upstream.server_name, then host
  std::string service;          // auth: kerberos: the SPN delegated to; defaults to kerberos.service, then HTTP/host
};

// Active health checks: a GET of `path` on every server each interval; a 2xx or 3xx answer marks it up.
struct HealthCheckConfig {
  std::string path;                     // e.g. /Microsoft-Server-ActiveSync/healthcheck.htm
  std::chrono::seconds interval{10};
  std::chrono::seconds timeout{5};      // connect, TLS and answer of one check
};

// upstream.servers holds at most this many (a request keeps the servers it tried in a 64-bit mask).
inline constexpr std::size_t max_upstream_servers = 64;

struct UpstreamConfig {
  // At least one; `upstream.url` is the one-server form of `upstream.servers`.
  std::vector<UpstreamServerConfig> servers;
  std::filesystem::path ca;     // verifies an https upstream; empty = system store
  UpstreamAuth auth = UpstreamAuth::forward_headers;
  std::optional<KerberosConfig> kerberos;
  std::size_t max_idle_connections = 1024;  // kept per I/O thread for reuse
  // Header names never forwarded from a device, on top of the built-in strip list (proxy/forwarded_headers.h).
  std::vector<std::string> strip_headers;
  // Where the backend reads who the user is and which certificate was presented; both names join the strip
  // list. An empty client_cert_header sends none.
  std::string identity_header = "X-Forwarded-User";
  IdentityFormat identity_format = IdentityFormat::upn;
  std::string client_cert_header = "X-Forwarded-Client-Cert";
  bool keepalive = true;        // false: a fresh connection per request (Connection: close)
  // With several servers: one whose connect failed or timed out is skipped this long (passive health).
  std::chrono::seconds retry{30};
  std::optional<HealthCheckConfig> health_check;
  // Numeric local addresses outgoing connections are bound to, in turn (each gives ~28k ports per server).
  std::vector<std::string> source_addresses;
};

struct LimitsConfig {
  std::uint64_t upload_read_ahead_bytes = 10485760;  // IIS uploadReadAheadSize from the guide
  std::uint32_t max_request_header_bytes = 16384;    // the whole head: request line and every field
  std::uint32_t max_request_headers = 100;           // header fields in one request
  std::uint32_t max_response_header_bytes = 65536;
  std::size_t relay_buffer_bytes = 65536;            // one chunk of a streamed body
  // Concurrent device connections per process; 0 = sized from the file-descriptor limit at start (each
  // device connection may need a second descriptor towards Exchange).
  std::size_t max_connections = 0;
  std::size_t verified_certificate_cache_entries = 100000;  // chain verdicts kept, by certificate hash
};

struct TimeoutsConfig {
  std::chrono::seconds handshake{10};
  std::chrono::seconds request_header{30};   // first byte to end of headers
  std::chrono::seconds authorization{15};    // revocation, directory and KDC answers for one request
  std::chrono::seconds client_idle{120};     // keep-alive wait for the next request
  std::chrono::seconds client_body{60};      // longest pause inside a request body
  std::chrono::seconds client_write{60};     // longest stall writing to the device
  std::chrono::seconds upstream_connect{5};
  std::chrono::seconds upstream_response{3600};  // long enough for a held Ping
  std::chrono::seconds upstream_idle{60};    // pooled upstream connection lifetime when unused
  std::chrono::seconds drain_delay{5};       // SIGTERM: /readyz fails, listeners keep accepting this long
  std::chrono::seconds drain{30};            // SIGTERM: then time for in-flight requests
  std::chrono::seconds retry_after{30};      // Retry-After sent with 503
};

enum class StrongBinding { disabled, compatibility, full };

struct LdapDirectoryConfig {
  std::string url;               // ldap://host:389 or ldaps://host:636
  std::string base;              // search base DN
  std::string bind_dn;
  std::filesystem::path password_file;
  std::filesystem::path ca;      // verifies the DC's certificate
  bool starttls = false;
  std::chrono::seconds timeout{5};
  std::size_t worker_threads = 2;
  std::chrono::seconds reconnect_max_backoff{30};

  bool operator==(const LdapDirectoryConfig&) const = default;
};

struct DirectoryConfig {
  std::optional<std::filesystem::path> ldif;
  std::optional<LdapDirectoryConfig> ldap;

  bool operator==(const DirectoryConfig&) const = default;
};

struct MappingCacheConfig {
  std::chrono::seconds ttl{300};
  std::chrono::seconds negative_ttl{30};
  std::size_t max_entries = 100000;

  bool operator==(const MappingCacheConfig&) const = default;
};

struct MappingConfig {
  DirectoryConfig directory;
  StrongBinding strong_binding = StrongBinding::full;
  std::string subject_template;                 // e.g. CN=WorkspaceONEUEM.{sAMAccountName}
  std::vector<std::filesystem::path> ntauth;    // CAs allowed for implicit (UPN) mapping
  std::string require_group;                    // group DN; empty = no group check
  std::chrono::seconds backdating_compensation{0};  // CertificateBackdatingCompensation
  MappingCacheConfig cache;

  bool operator==(const MappingConfig&) const = default;
};

struct DeviceRulesConfig {
  std::vector<std::string> allow{"*"};     // DeviceId patterns
  std::vector<std::string> block;          // DeviceId patterns; block wins
  std::vector<std::string> block_types;    // DeviceType patterns
};

struct EasConfig {
  bool require_user_match = false;
  DeviceRulesConfig devices;
  std::chrono::seconds ping_timeout{3600};      // Ping and Sync, which may be held by Exchange
  std::chrono::seconds command_timeout{600};    // every other command
};

enum class AccessLogFormat { w3c, json };

struct LogConfig {
  std::string access;                 // "" = off, "stdout", or a file path
  AccessLogFormat format = AccessLogFormat::w3c;
  std::string level = "info";         // trace|debug|info|warn|error
};

// Who may use the operator console on the admin listener: none (loopback only), a bearer token for /api/...,
// or an operator certificate for every console page and /api/... (/healthz, /readyz, /metrics stay open).
enum class AdminAuth { none, token, client_certificate };

struct AdminConfig {
  std::string host;
  std::uint16_t port = 0;
  AdminAuth auth = AdminAuth::none;           // none only while the listener is on loopback
  std::filesystem::path token_file;           // auth: token
  std::string token;                          // read from token_file at load time; never logged
  std::filesystem::path client_ca;            // auth: client_certificate: CAs trusted for operator certificates
  std::vector<std::filesystem::path> crl;     // auth: client_certificate: CRLs of those CAs (empty: not checked)
  std::filesystem::path certificate;          // the listener's own chain: set, it speaks HTTPS; empty, plain HTTP
  std::filesystem::path private_key;          // with certificate
  std::size_t explain_max_bytes = 64 * 1024;  // largest PEM the console's explain form accepts

  bool operator==(const AdminConfig&) const = default;
};

struct Config {
  std::filesystem::path source_file;  // the YAML file this came from
  std::vector<ListenerConfig> listen;
  TlsConfig tls;
  UpstreamConfig upstream;
  LimitsConfig limits;
  TimeoutsConfig timeouts;
  std::optional<MappingConfig> mapping;
  EasConfig eas;
  LogConfig log;
  std::optional<AdminConfig> admin;
  std::string user;             // drop privileges to this user after binding; empty = stay
  std::size_t threads = 0;      // I/O threads; 0 = one per core
};

// Reads and validates FILE. Throws ConfigError naming the file and key on any problem, including
// unknown keys (a typo must never silently weaken security). Relative paths are resolved against the
// file's folder; file existence is checked where a path is named.
Config load_config(const std::filesystem::path& file);

// Parses "host:port" / "[v6]:port"; throws std::invalid_argument with a readable reason.
std::pair<std::string, std::uint16_t> parse_host_port(const std::string& text);

}  // namespace easedge::config
