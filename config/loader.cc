// Turns the config file into config::Config, with every key checked (the upstream section: upstream_loader.cc).
#include "config/config.h"

#include "config/cipher_list.h"
#include "config/section.h"

#include <boost/url/parse.hpp>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <fstream>
#include <stdexcept>

namespace easedge::config {

ConfigError::ConfigError(const std::filesystem::path& file, const std::string& key,
                         const std::string& problem)
    : std::runtime_error(file.string() + ": " + (key.empty() ? "" : "key '" + key + "': ") + problem),
      key_(key) {}

std::pair<std::string, std::uint16_t> parse_host_port(const std::string& text) {
  std::string host;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw std::invalid_argument("expected [ipv6]:port, got '" + text + "'");
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("expected host:port, got '" + text + "'");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535)
    throw std::invalid_argument("port must be a number from 0 to 65535, got '" + port_text + "'");
  if (host.empty()) throw std::invalid_argument("host is empty in '" + text + "'");
  return {host, static_cast<std::uint16_t>(port)};
}

namespace {

ListenerConfig parse_listener(const Section& root, const YAML::Node& item, std::size_t index) {
  auto key = "listen[" + std::to_string(index) + "]";
  ListenerConfig listener;
  std::string address;
  if (item.IsScalar()) {
    address = item.as<std::string>();
  } else if (item.IsMap()) {
    Section entry(root.file(), item, key);
    entry.only({"address", "proxy_protocol"});
    address = entry.required_string("address");
    listener.proxy_protocol = entry.boolean("proxy_protocol", false);
  } else {
    root.fail(key, "expected \"host:port\" or {address: host:port, proxy_protocol: bool}");
  }
  try {
    std::tie(listener.host, listener.port) = parse_host_port(address);
  } catch (const std::invalid_argument& e) {
    root.fail(key, e.what());
  }
  return listener;
}

MappingConfig parse_mapping(const Section& s) {
  s.only({"directory", "strong_binding", "subject_template", "ntauth", "require_group",
          "backdating_compensation_seconds", "cache"});
  MappingConfig m;
  auto directory = s.section("directory");
  if (!directory) s.fail(s.key_of("directory"), "is required (ldif: FILE or ldap: {...})");
  directory->only({"ldif", "ldap"});
  if (directory->has("ldif") == directory->has("ldap"))
    directory->fail(directory->path_name(), "set exactly one of ldif or ldap");
  if (directory->has("ldif")) m.directory.ldif = directory->path("ldif");
  if (auto ldap = directory->section("ldap")) {
    ldap->only({"url", "base", "bind_dn", "password_file", "ca", "starttls", "timeout_seconds",
                "worker_threads", "reconnect_max_backoff_seconds"});
    LdapDirectoryConfig l;
    l.url = ldap->required_string("url");
    auto parsed = boost::urls::parse_absolute_uri(l.url);
    if (!parsed || (parsed->scheme() != "ldap" && parsed->scheme() != "ldaps"))
      ldap->fail(ldap->key_of("url"), "expected ldap://host[:port] or ldaps://host[:port], got '" + l.url + "'");
    l.base = ldap->required_string("base");
    l.bind_dn = ldap->string("bind_dn");
    l.password_file = ldap->path("password_file");
    if (!l.bind_dn.empty() && l.password_file.empty())
      ldap->fail(ldap->key_of("password_file"), "is required with bind_dn (the password never goes in the config)");
    l.ca = ldap->path("ca");
    l.starttls = ldap->boolean("starttls", false);
    if (l.starttls && parsed->scheme() == "ldaps")
      ldap->fail(ldap->key_of("starttls"), "cannot be used with an ldaps:// url");
    l.timeout = ldap->seconds("timeout_seconds", l.timeout, 1, 300);
    l.worker_threads = ldap->number("worker_threads", l.worker_threads, 1, 64);
    l.reconnect_max_backoff = ldap->seconds("reconnect_max_backoff_seconds", l.reconnect_max_backoff, 1, 3600);
    m.directory.ldap = l;
  }
  m.strong_binding = s.choice("strong_binding", StrongBinding::full,
                              {{"disabled", StrongBinding::disabled},
                               {"compatibility", StrongBinding::compatibility},
                               {"full", StrongBinding::full}});
  m.subject_template = s.string("subject_template");
  if (!m.subject_template.empty() && m.subject_template.find("{sAMAccountName}") == std::string::npos &&
      m.subject_template.find("{userPrincipalName}") == std::string::npos)
    s.fail(s.key_of("subject_template"), "must contain {sAMAccountName} or {userPrincipalName}");
  m.ntauth = s.paths("ntauth");
  m.require_group = s.string("require_group");
  m.backdating_compensation = s.seconds("backdating_compensation_seconds", m.backdating_compensation, 0,
                                        50LL * 365 * 86400);
  if (auto cache = s.section("cache")) {
    cache->only({"ttl_seconds", "negative_ttl_seconds", "max_entries"});
    m.cache.ttl = cache->seconds("ttl_seconds", m.cache.ttl, 0, 86400);
    m.cache.negative_ttl = cache->seconds("negative_ttl_seconds", m.cache.negative_ttl, 0, 86400);
    m.cache.max_entries = cache->number("max_entries", m.cache.max_entries, 1, 100000000);
  }
  return m;
}

RevocationConfig parse_revocation(const Section& s) {
  s.only({"fetch_cdp", "ocsp", "refresh_seconds", "on_unavailable", "crl_grace_seconds",
          "fetch_timeout_seconds", "max_crl_bytes", "cache_dir"});
  RevocationConfig r;
  r.fetch_cdp = s.boolean("fetch_cdp", r.fetch_cdp);
  r.ocsp = s.boolean("ocsp", r.ocsp);
  r.refresh = s.seconds("refresh_seconds", r.refresh, 1, 86400);
  r.on_unavailable = s.choice("on_unavailable", r.on_unavailable,
                              {{"deny", RevocationFallback::deny}, {"allow", RevocationFallback::allow}});
  r.crl_grace = s.seconds("crl_grace_seconds", r.crl_grace, 0, 30 * 86400);
  r.fetch_timeout = s.seconds("fetch_timeout_seconds", r.fetch_timeout, 1, 300);
  r.max_crl_bytes = s.number("max_crl_bytes", r.max_crl_bytes, 1024, 1ULL << 32);
  if (s.has("cache_dir")) r.cache_dir = s.resolve("cache_dir", s.string("cache_dir"), false);
  return r;
}

EasConfig parse_eas(const Section& s) {
  s.only({"require_user_match", "devices", "ping_timeout_seconds", "command_timeout_seconds"});
  EasConfig e;
  e.require_user_match = s.boolean("require_user_match", e.require_user_match);
  if (auto devices = s.section("devices")) {
    devices->only({"allow", "block", "block_types"});
    e.devices.allow = devices->strings("allow", e.devices.allow);
    e.devices.block = devices->strings("block");
    e.devices.block_types = devices->strings("block_types");
  }
  e.ping_timeout = s.seconds("ping_timeout_seconds", e.ping_timeout, 1, 86400);
  e.command_timeout = s.seconds("command_timeout_seconds", e.command_timeout, 1, 86400);
  return e;
}

std::vector<ListenerConfig> parse_listen(const Section& root) {
  if (!root.has("listen")) root.fail("listen", "is required (a list of host:port)");
  std::vector<ListenerConfig> listeners;
  auto listen = root.raw("listen");
  if (listen.IsScalar()) {
    listeners.push_back(parse_listener(root, listen, 0));
  } else if (listen.IsSequence() && listen.size() > 0) {
    for (std::size_t i = 0; i < listen.size(); ++i) listeners.push_back(parse_listener(root, listen[i], i));
  } else {
    root.fail("listen", "expected a non-empty list of host:port");
  }
  return listeners;
}

TlsConfig parse_tls(const Section& tls) {
  tls.only({"certificate", "private_key", "client_ca", "client_certificate", "crl", "revocation", "min_version",
            "session_tickets", "session_ticket_keys", "ciphers"});
  TlsConfig t;
  t.certificate = tls.required_path("certificate");
  t.private_key = tls.required_path("private_key");
  t.client_certificate = tls.choice("client_certificate", ClientCertificateMode::required,
                                    {{"required", ClientCertificateMode::required},
                                     {"optional", ClientCertificateMode::optional},
                                     {"off", ClientCertificateMode::off}});
  t.client_ca = tls.path("client_ca");
  if (t.client_ca.empty() && t.client_certificate != ClientCertificateMode::off)
    tls.fail(tls.key_of("client_ca"), "is required unless client_certificate is off");
  t.crl = tls.paths("crl");
  if (auto revocation = tls.section("revocation")) t.revocation = parse_revocation(*revocation);
  t.min_version = tls.string("min_version", "1.2");
  if (t.min_version != "1.2" && t.min_version != "1.3")
    tls.fail(tls.key_of("min_version"), "expected 1.2 or 1.3, got '" + t.min_version + "'");
  t.session_tickets = tls.boolean("session_tickets", true);
  t.session_ticket_keys = tls.path("session_ticket_keys");
  if (!t.session_ticket_keys.empty() && !t.session_tickets)
    tls.fail(tls.key_of("session_ticket_keys"), "needs session_tickets: true");
  t.ciphers = tls.string("ciphers", t.ciphers);
  if (t.ciphers.empty()) tls.fail(tls.key_of("ciphers"), "must not be empty");
  if (auto checked = check_cipher_list(t.ciphers); !checked) tls.fail(tls.key_of("ciphers"), checked.error());
  return t;
}

LimitsConfig parse_limits(const Section& limits) {
  limits.only({"upload_read_ahead_bytes", "max_request_header_bytes", "max_response_header_bytes",
               "max_request_headers", "relay_buffer_bytes", "max_connections", "verified_certificate_cache_entries"});
  LimitsConfig l;
  l.upload_read_ahead_bytes = limits.number("upload_read_ahead_bytes", l.upload_read_ahead_bytes, 0, 1ULL << 40);
  l.max_request_header_bytes = limits.number("max_request_header_bytes", l.max_request_header_bytes, 1024, 1 << 20);
  l.max_response_header_bytes =
      limits.number("max_response_header_bytes", l.max_response_header_bytes, 1024, 1 << 20);
  l.max_request_headers = limits.number("max_request_headers", l.max_request_headers, 8, 10000);
  l.relay_buffer_bytes = limits.number("relay_buffer_bytes", l.relay_buffer_bytes, 1024, 16 << 20);
  l.max_connections = limits.number("max_connections", l.max_connections, 0, 10000000);
  l.verified_certificate_cache_entries =
      limits.number("verified_certificate_cache_entries", l.verified_certificate_cache_entries, 0, 100000000);
  return l;
}

TimeoutsConfig parse_timeouts(const Section& timeouts) {
  timeouts.only({"handshake_seconds", "request_header_seconds", "authorization_seconds", "client_idle_seconds",
                 "client_body_seconds", "client_write_seconds", "upstream_connect_seconds",
                 "upstream_response_seconds", "upstream_idle_seconds", "drain_delay_seconds", "drain_seconds",
                 "retry_after_seconds"});
  TimeoutsConfig t;
  t.handshake = timeouts.seconds("handshake_seconds", t.handshake, 1);
  t.request_header = timeouts.seconds("request_header_seconds", t.request_header, 1);
  t.authorization = timeouts.seconds("authorization_seconds", t.authorization, 1);
  t.client_idle = timeouts.seconds("client_idle_seconds", t.client_idle, 1);
  t.client_body = timeouts.seconds("client_body_seconds", t.client_body, 1);
  t.client_write = timeouts.seconds("client_write_seconds", t.client_write, 1);
  t.upstream_connect = timeouts.seconds("upstream_connect_seconds", t.upstream_connect, 1);
  t.upstream_response = timeouts.seconds("upstream_response_seconds", t.upstream_response, 1);
  t.upstream_idle = timeouts.seconds("upstream_idle_seconds", t.upstream_idle, 1);
  t.drain_delay = timeouts.seconds("drain_delay_seconds", t.drain_delay, 0, 3600);
  t.drain = timeouts.seconds("drain_seconds", t.drain, 0);
  t.retry_after = timeouts.seconds("retry_after_seconds", t.retry_after, 1, 86400);
  return t;
}

LogConfig parse_log(const Section& log) {
  log.only({"access", "format", "level"});
  LogConfig l;
  l.access = log.string("access");
  if (l.access == "off") l.access.clear();
  if (!l.access.empty() && l.access != "stdout") l.access = log.resolve("access", l.access, false).string();
  l.format = log.choice("format", AccessLogFormat::w3c, {{"w3c", AccessLogFormat::w3c}, {"json", AccessLogFormat::json}});
  l.level = log.choice<std::string>(
      "level", "info", {{"trace", "trace"}, {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}});
  return l;
}

AdminConfig parse_admin(const Section& admin) {
  admin.only({"listen", "auth", "token_file", "client_ca", "crl", "certificate", "private_key", "explain_max_bytes"});
  AdminConfig a;
  try {
    std::tie(a.host, a.port) = parse_host_port(admin.required_string("listen"));
  } catch (const std::invalid_argument& e) {
    admin.fail(admin.key_of("listen"), e.what());
  }
  a.auth = admin.choice("auth", AdminAuth::none,
                        {{"none", AdminAuth::none},
                         {"token", AdminAuth::token},
                         {"client_certificate", AdminAuth::client_certificate}});
  const bool loopback = a.host == "localhost" || a.host == "::1" || a.host.starts_with("127.");
  if (a.auth == AdminAuth::none && !loopback)
    admin.fail(admin.key_of("auth"), "admin.listen " + a.host + " is not a loopback address: set auth: "
                                     "client_certificate and client_ca, or auth: token and token_file, or listen "
                                     "on 127.0.0.1");
  // The listener's own certificate (HTTPS) goes with any auth; the loader checks the files are readable, the TLS
  // context (auth/tls_context) that the key matches the certificate.
  if (admin.has("certificate") != admin.has("private_key"))
    admin.fail(admin.key_of(admin.has("certificate") ? "private_key" : "certificate"),
               admin.has("certificate") ? "is required with certificate" : "is required with private_key");
  a.certificate = admin.path("certificate");
  a.private_key = admin.path("private_key");
  if (a.auth == AdminAuth::client_certificate) {
    if (!admin.has("client_ca"))
      admin.fail(admin.key_of("client_ca"), "is required with auth: client_certificate (the CAs that issue "
                                            "operator certificates)");
    if (a.certificate.empty())
      admin.fail(admin.key_of("certificate"), "is required with auth: client_certificate (the listener must speak "
                                              "HTTPS to ask for a client certificate)");
    a.client_ca = admin.path("client_ca");
    a.crl = admin.paths("crl");
  } else {
    for (const char* key : {"client_ca", "crl"})
      if (admin.has(key)) admin.fail(admin.key_of(key), "needs auth: client_certificate");
  }
  if (a.auth == AdminAuth::token) {
    if (!admin.has("token_file")) admin.fail(admin.key_of("token_file"), "is required with auth: token");
    a.token_file = admin.path("token_file", false);
    std::ifstream in(a.token_file);
    if (!in || !std::getline(in, a.token))
      admin.fail(admin.key_of("token_file"), "cannot read '" + a.token_file.string() + "'");
    while (!a.token.empty() && std::isspace(static_cast<unsigned char>(a.token.back()))) a.token.pop_back();
    constexpr std::size_t min_token_length = 16;
    if (a.token.size() < min_token_length)
      admin.fail(admin.key_of("token_file"), "'" + a.token_file.string() + "' must hold a token of at least " +
                                                 std::to_string(min_token_length) + " characters on its first line");
  }
  a.explain_max_bytes = admin.number("explain_max_bytes", a.explain_max_bytes, 1024, 1024 * 1024);
  return a;
}

YAML::Node read_document(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw ConfigError(file, "", "cannot read the configuration file");
  YAML::Node doc;
  try {
    doc = YAML::Load(in);
  } catch (const YAML::Exception& e) {
    throw ConfigError(file, "", "YAML syntax error at line " + std::to_string(e.mark.line + 1) + ", column " +
                                    std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (!doc.IsMap()) throw ConfigError(file, "", "expected a YAML mapping at the top level");
  return doc;
}

}  // namespace

Config load_config(const std::filesystem::path& file_in) {
  auto file = std::filesystem::absolute(file_in).lexically_normal();
  Section root(file, read_document(file), "");
  root.only({"listen", "tls", "upstream", "limits", "timeouts", "mapping", "eas", "log", "admin", "user",
             "threads"});
  Config config;
  config.source_file = file;
  config.listen = parse_listen(root);
  auto tls = root.section("tls");
  if (!tls) root.fail("tls", "is required");
  config.tls = parse_tls(*tls);
  auto upstream = root.section("upstream");
  if (!upstream) root.fail("upstream", "is required");
  config.upstream = parse_upstream(*upstream);
  if (auto limits = root.section("limits")) config.limits = parse_limits(*limits);
  if (auto timeouts = root.section("timeouts")) config.timeouts = parse_timeouts(*timeouts);
  if (auto mapping = root.section("mapping")) config.mapping = parse_mapping(*mapping);
  if (auto eas = root.section("eas")) config.eas = parse_eas(*eas);
  if ((config.upstream.identity_format == IdentityFormat::sam_account_name ||
       config.upstream.identity_format == IdentityFormat::mail) && !config.mapping)
    root.fail("upstream.identity_format", "sam_account_name and mail come from the directory: set mapping");
  if (config.eas.require_user_match && config.tls.client_certificate == ClientCertificateMode::off)
    root.fail("eas.require_user_match", "needs client certificates (tls.client_certificate is off)");
  if (auto log = root.section("log")) config.log = parse_log(*log);
  if (auto admin = root.section("admin")) config.admin = parse_admin(*admin);
  config.user = root.string("user");
  config.threads = root.number("threads", 0, 0, 256);
  return config;
}

}  // namespace easedge::config
