#include "bench/easbench/options.h"

#include <CLI/CLI.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <ostream>

namespace easedge::bench {

namespace {

// Thrown only inside parse_options: every validation failure becomes one "easbench: ..." line.
struct BadOption {
  std::string message;
};

void require_file(const std::filesystem::path& p, const char* flag) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(p, ec)) {
    throw BadOption{std::string(flag) + ": cannot read file '" + p.string() + "'"};
  }
}

void parse_url(Options& o) {
  auto parsed = boost::urls::parse_uri(o.url);
  if (!parsed) throw BadOption{"--url: not a valid URL: '" + o.url + "'"};
  std::string scheme(parsed->scheme());
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  if (scheme != "https") throw BadOption{"--url: scheme must be https: '" + o.url + "'"};
  if (!parsed->has_authority() || parsed->encoded_host().empty()) {
    throw BadOption{"--url: no host in '" + o.url + "'"};
  }
  o.host = parsed->host_type() == boost::urls::host_type::ipv6 ? std::string(parsed->host_ipv6_address().to_string())
                                                               : std::string(parsed->host());
  if (parsed->has_port()) {
    if (parsed->port_number() == 0) throw BadOption{"--url: bad port in '" + o.url + "'"};
    o.port = parsed->port_number();
  }
  o.path = parsed->encoded_path().empty() ? "/Microsoft-Server-ActiveSync" : std::string(parsed->encoded_path());
  if (!is_loopback_host(o.host)) {
    throw BadOption{"--url: host '" + o.host +
                    "' is not a loopback address (127.0.0.0/8, ::1, localhost); easbench only loads this machine"};
  }
}

void validate(Options& o, bool has_cert, bool has_key, bool has_dca, bool has_dkey, bool has_devices) {
  parse_url(o);
  require_file(o.ca, "--ca");
  const bool single = has_cert || has_key;
  const bool minted = has_dca || has_dkey || has_devices;
  if (single == minted) {
    throw BadOption{"give either --cert and --key, or --device-ca, --device-ca-key and --devices"};
  }
  if (single) {
    if (!has_cert || !has_key) throw BadOption{"--cert and --key go together"};
    require_file(o.cert, "--cert");
    require_file(o.key, "--key");
  } else {
    if (!has_dca || !has_dkey || !has_devices) {
      throw BadOption{"--device-ca, --device-ca-key and --devices go together"};
    }
    require_file(o.device_ca, "--device-ca");
    require_file(o.device_ca_key, "--device-ca-key");
    if (o.devices == 0) throw BadOption{"--devices must be at least 1"};
  }
  if (o.connections == 0) throw BadOption{"--connections must be at least 1"};
  if (o.duration_s.has_value() == o.requests.has_value()) {
    throw BadOption{"give exactly one of --duration or --requests"};
  }
  if (o.duration_s && !(*o.duration_s > 0)) throw BadOption{"--duration must be positive"};
  if (o.requests && *o.requests == 0) throw BadOption{"--requests must be at least 1"};
  if (!(o.ping_hold_s >= 0)) throw BadOption{"--ping-hold must not be negative"};
  if (o.rate) {
    if (!(*o.rate > 0)) throw BadOption{"--rate must be positive"};
    if (o.scenario == Scenario::ping || o.scenario == Scenario::mix) {
      throw BadOption{"--rate applies to the handshake, sync and upload scenarios"};
    }
  }
  if (o.upn_domain.empty()) throw BadOption{"--upn-domain must not be empty"};
}

}  // namespace

const char* scenario_name(Scenario s) {
  switch (s) {
    case Scenario::handshake: return "handshake";
    case Scenario::sync: return "sync";
    case Scenario::ping: return "ping";
    case Scenario::upload: return "upload";
    case Scenario::mix: return "mix";
  }
  return "?";
}

bool is_loopback_host(const std::string& host) {
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "localhost") return true;
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (ec) return false;
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, addr.to_v6()).is_loopback();
  }
  return addr.is_loopback();
}

ParseResult parse_options(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  Options o;
  CLI::App app{"easbench: load harness that plays enrolled ActiveSync devices against an mTLS edge (loopback only)",
               "easbench"};
  app.option_defaults()->always_capture_default();
  app.add_option("--url", o.url, "https://HOST:PORT/Microsoft-Server-ActiveSync (HOST must be loopback)")->required();
  app.add_option("--ca", o.ca, "CA certificate(s) that verify the server certificate (PEM)")->required();
  auto* cert = app.add_option("--cert", o.cert, "one device certificate (PEM) used by every connection");
  auto* key = app.add_option("--key", o.key, "its private key (PEM)");
  auto* dca = app.add_option("--device-ca", o.device_ca, "CA certificate that mints the device certificates (PEM)");
  auto* dkey = app.add_option("--device-ca-key", o.device_ca_key, "that CA's private key (PEM)");
  auto* devices = app.add_option("--devices", o.devices, "number of device identities to mint");
  app.add_option("--upn-domain", o.upn_domain, "UPN suffix of minted devices: user<i>@DOMAIN");
  std::string scenario;
  app.add_option("--scenario", scenario, "handshake|sync|ping|upload|mix")
      ->required()
      ->check(CLI::IsMember({"handshake", "sync", "ping", "upload", "mix"}));
  app.add_option("--connections", o.connections, "concurrent connections")->required();
  app.add_option("--duration", o.duration_s, "run length in seconds");
  app.add_option("--requests", o.requests, "total requests, then stop");
  app.add_option("--ping-hold", o.ping_hold_s, "seconds the server holds a Ping (sent as HeartbeatInterval)");
  app.add_option("--upload-bytes", o.upload_bytes, "body size of an upload (SendMail) request");
  app.add_option("--json", o.json, "write the result as JSON to FILE");
  app.add_option("--rate", o.rate, "open loop: requests per second in total, latency from the scheduled time");
  std::string key_type = "p256";
  app.add_option("--key-type", key_type, "key of minted devices: p256|rsa2048")->check(CLI::IsMember({"p256", "rsa2048"}));
  app.add_option("--threads", o.threads, "I/O threads (default: one per core)");
  app.add_flag("--resume", o.resume,
               "each device's next connection resumes its TLS session from the latest ticket (first one full); "
               "exit 3 when a device's later connection was a full handshake");

  ParseResult result;
  try {
    app.parse(argc, argv);
    o.scenario = scenario == "handshake" ? Scenario::handshake
                 : scenario == "sync"    ? Scenario::sync
                 : scenario == "ping"    ? Scenario::ping
                 : scenario == "upload"  ? Scenario::upload
                                         : Scenario::mix;
    o.key_type = key_type == "rsa2048" ? KeyType::rsa2048 : KeyType::p256;
    validate(o, cert->count() > 0, key->count() > 0, dca->count() > 0, dkey->count() > 0, devices->count() > 0);
  } catch (const CLI::CallForHelp& e) {
    result.exit_code = app.exit(e, out, err);
    return result;
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    err << "easbench: " << what << " (see --help)\n";
    result.exit_code = 2;
    return result;
  } catch (const BadOption& e) {
    err << "easbench: " << e.message << "\n";
    result.exit_code = 2;
    return result;
  }
  result.options = std::move(o);
  return result;
}

}  // namespace easedge::bench
