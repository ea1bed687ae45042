// The upstream section of the configuration: the Exchange (or SOGo) servers and how they learn the user.
#include "config/section.h"

#include <boost/asio/ip/address.hpp>
#include <boost/system/result.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <string_view>

namespace easedge::config {
namespace {

// Whether `path` can prefix every forwarded target, or why not: it must be "/segment[/segment...]" of plain
// characters, so what the backend routes on is exactly what the operator wrote (no "..", no "//", no
// percent-encoded bytes that a backend might decode into either).
boost::system::result<void, std::string> check_path_prefix(std::string_view path) {
  if (path.empty()) return {};
  if (path.front() != '/') return "must be an absolute path";
  std::size_t start = 1;
  while (start <= path.size()) {
    auto end = std::min(path.find('/', start), path.size());
    auto segment = path.substr(start, end - start);
    if (segment.empty()) return "must not contain an empty segment ('//')";
    if (segment == "." || segment == "..") return "must not contain '.' or '..' segments";
    for (char c : segment) {
      bool plain = std::isalnum(static_cast<unsigned char>(c)) ||
                   std::string_view("-._~!$&'()*+,;=:@").find(c) != std::string_view::npos;
      if (!plain) return "must not contain '" + std::string(1, c) + "' (letters, digits and -._~!$&'()*+,;=:@ only)";
    }
    start = end + 1;
  }
  return {};
}

// One server's URL, from `key` (upstream.url or upstream.servers[i]).
UpstreamServerConfig parse_server_url(const Section& upstream, const std::string& key, const std::string& url) {
  UpstreamServerConfig out;
  out.url = url;
  auto parsed = boost::urls::parse_absolute_uri(out.url);
  if (!parsed) upstream.fail(key, "not an absolute URL: '" + out.url + "'");
  out.scheme = std::string(parsed->scheme());
  if (out.scheme != "http" && out.scheme != "https")
    upstream.fail(key, "scheme must be http or https, got '" + out.scheme + "'");
  if (!parsed->has_authority() || parsed->host().empty())
    upstream.fail(key, "has no host: '" + out.url + "'");
  if (parsed->has_userinfo()) upstream.fail(key, "must not carry a user or password");
  if (parsed->has_query() || parsed->has_fragment())
    upstream.fail(key, "must not carry a query or fragment: requests keep their own query");
  std::string path(parsed->encoded_path());
  if (path == "/")
    path.clear();
  else if (path.size() > 1 && path.back() == '/')
    path.pop_back();  // "/SOGo/" is "/SOGo"; "//" stays a problem
  if (auto checked = check_path_prefix(path); !checked)
    upstream.fail(key, "the path '" + std::string(parsed->encoded_path()) + "' " + checked.error());
  out.path_prefix = path;
  out.host = std::string(parsed->host_address());
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']') out.host = out.host.substr(1, out.host.size() - 2);
  out.port = parsed->has_port() ? parsed->port_number() : (out.scheme == "https" ? 443 : 80);
  if (parsed->has_port() && out.port == 0) upstream.fail(key, "port 0 is not a valid upstream port");
  return out;
}

bool is_header_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

// upstream.identity_header, identity_format and client_cert_header: how the backend learns who the user is.
void parse_upstream_identity(const Section& upstream, UpstreamConfig& out) {
  out.identity_header = upstream.string("identity_header", out.identity_header);
  if (!is_header_name(out.identity_header))
    upstream.fail(upstream.key_of("identity_header"), "'" + out.identity_header + "' is not a header field name");
  out.identity_format = upstream.choice("identity_format", out.identity_format,
                                        {{"upn", IdentityFormat::upn},
                                         {"sam_account_name", IdentityFormat::sam_account_name},
                                         {"upn_local_part", IdentityFormat::upn_local_part},
                                         {"mail", IdentityFormat::mail}});
  out.client_cert_header = upstream.string("client_cert_header", out.client_cert_header);
  if (!out.client_cert_header.empty() && !is_header_name(out.client_cert_header))
    upstream.fail(upstream.key_of("client_cert_header"), "'" + out.client_cert_header + "' is not a header field name");
  auto canonical = [](std::string name) {
    for (auto& c : name) c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return name;
  };
  if (canonical(out.identity_header) == canonical(out.client_cert_header))
    upstream.fail(upstream.key_of("client_cert_header"), "must differ from identity_header");
  // Fields easedge writes for framing, routing and its other identity headers: a user name there would
  // re-frame or re-route the forwarded request.
  static constexpr std::string_view written_by_easedge[]{
      "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
      "trailer", "upgrade", "expect", "authorization", "proxy-authorization", "x-forwarded-for",
      "x-forwarded-proto", "x-request-id"};
  for (const char* key : {"identity_header", "client_cert_header"}) {
    auto name = canonical(key == std::string_view("identity_header") ? out.identity_header : out.client_cert_header);
    if (std::find(std::begin(written_by_easedge), std::end(written_by_easedge), name) != std::end(written_by_easedge))
      upstream.fail(upstream.key_of(key), "'" + name + "' is a field easedge writes itself");
  }
}

KerberosConfig parse_kerberos(const Section& s) {
  s.only({"keytab", "principal", "service", "credential_refresh_margin_seconds", "cache_max_entries",
          "worker_threads"});
  KerberosConfig k;
  k.keytab = s.required_path("keytab");
  k.principal = s.required_string("principal");
  k.service = s.string("service");
  if (!k.service.empty() && k.service.find('/') == std::string::npos)
    s.fail(s.key_of("service"), "expected an SPN like HTTP/exchange.corp.example.test, got '" + k.service + "'");
  k.credential_refresh_margin = s.seconds("credential_refresh_margin_seconds", k.credential_refresh_margin, 0, 86400);
  k.cache_max_entries = s.number("cache_max_entries", k.cache_max_entries, 1, 100000000);
  k.worker_threads = s.number("worker_threads", k.worker_threads, 1, 64);
  return k;
}

bool is_ip_address(const std::string& text) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(text, ec);
  return !ec;
}

// upstream.servers (or the one-server upstream.url), each a URL or {url, server_name, service}.
std::vector<UpstreamServerConfig> parse_servers(const Section& s) {
  if (s.has("url") == s.has("servers"))
    s.fail(s.key_of(s.has("url") ? "servers" : "url"),
           s.has("url") ? "give either url (one server) or servers (several), not both" : "is required (or servers)");
  if (s.has("url")) return {parse_server_url(s, s.key_of("url"), s.required_string("url"))};
  auto list = s.raw("servers");
  if (!list.IsSequence() || list.size() == 0) s.fail(s.key_of("servers"), "expected a non-empty list of URLs");
  if (list.size() > max_upstream_servers)
    s.fail(s.key_of("servers"), "at most " + std::to_string(max_upstream_servers) + " servers");
  std::vector<UpstreamServerConfig> servers;
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto key = s.key_of("servers") + "[" + std::to_string(i) + "]";
    if (list[i].IsScalar()) {
      servers.push_back(parse_server_url(s, key, list[i].as<std::string>()));
      continue;
    }
    if (!list[i].IsMap()) s.fail(key, "expected a URL or {url, server_name, service}");
    Section entry(s.file(), list[i], key);
    entry.only({"url", "server_name", "service"});
    auto server = parse_server_url(s, entry.key_of("url"), entry.required_string("url"));
    server.server_name = entry.string("server_name");
    server.service = entry.string("service");
    if (!server.service.empty() && server.service.find('/') == std::string::npos)
      entry.fail(entry.key_of("service"), "expected an SPN like HTTP/exchange1.corp.example.test");
    servers.push_back(std::move(server));
  }
  for (std::size_t i = 0; i < servers.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (servers[i].url == servers[j].url)
        s.fail(s.key_of("servers") + "[" + std::to_string(i) + "]", "lists " + servers[i].url + " twice");
  return servers;
}

}  // namespace

UpstreamConfig parse_upstream(const Section& s) {
  s.only({"url", "servers", "ca", "server_name", "auth", "kerberos", "max_idle_connections", "strip_headers",
          "retry_seconds", "health_check", "source_addresses", "identity_header", "identity_format",
          "client_cert_header", "keepalive"});
  UpstreamConfig u;
  u.servers = parse_servers(s);
  // One forwarded target for every server: the servers of a farm serve the same application under one path.
  for (const auto& server : u.servers)
    if (server.path_prefix != u.servers.front().path_prefix)
      s.fail(s.key_of("servers"), server.url + " has another path than " + u.servers.front().url +
                                      ": every server must serve ActiveSync under the same path");
  u.ca = s.path("ca");
  auto server_name = s.string("server_name");
  u.auth = s.choice("auth", UpstreamAuth::forward_headers,
                    {{"forward-headers", UpstreamAuth::forward_headers}, {"kerberos", UpstreamAuth::kerberos}});
  if (auto kerberos = s.section("kerberos")) u.kerberos = parse_kerberos(*kerberos);
  if (u.auth == UpstreamAuth::kerberos && !u.kerberos) s.fail(s.key_of("kerberos"), "is required when auth is kerberos");
  for (auto& server : u.servers) {
    if (server.server_name.empty()) server.server_name = server_name.empty() ? server.host : server_name;
    if (!u.kerberos || !server.service.empty()) continue;
    server.service = u.kerberos->service;
    if (!server.service.empty()) continue;
    if (is_ip_address(server.host))
      s.fail(s.key_of("kerberos.service"), server.url + " names an IP address: give its SPN (servers[].service or "
                                           "kerberos.service), Kerberos needs the server's name");
    server.service = "HTTP/" + server.host;
  }
  u.max_idle_connections = s.number("max_idle_connections", u.max_idle_connections, 0, 1000000);
  u.strip_headers = s.strings("strip_headers");
  for (const auto& name : u.strip_headers)
    if (!is_header_name(name)) s.fail(s.key_of("strip_headers"), "'" + name + "' is not a header field name");
  parse_upstream_identity(s, u);
  u.keepalive = s.boolean("keepalive", u.keepalive);
  u.retry = s.seconds("retry_seconds", u.retry, 1, 86400);
  if (auto check = s.section("health_check")) {
    check->only({"path", "interval_seconds", "timeout_seconds"});
    HealthCheckConfig h;
    h.path = check->required_string("path");
    if (h.path.front() != '/' || !std::all_of(h.path.begin(), h.path.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; }))
      check->fail(check->key_of("path"), "expected an absolute path like /Microsoft-Server-ActiveSync/healthcheck.htm");
    h.interval = check->seconds("interval_seconds", h.interval, 1, 3600);
    h.timeout = check->seconds("timeout_seconds", h.timeout, 1, 300);
    u.health_check = h;
  }
  u.source_addresses = s.strings("source_addresses");
  for (const auto& address : u.source_addresses)
    if (!is_ip_address(address))
      s.fail(s.key_of("source_addresses"), "'" + address + "' is not a numeric IPv4 or IPv6 address");
  return u;
}

}  // namespace easedge::config
