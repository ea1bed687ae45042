// easbench command line: the options of a run, parsed and validated before any load starts.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace easedge::bench {

enum class Scenario { handshake, sync, ping, upload, mix };
enum class KeyType { p256, rsa2048 };

const char* scenario_name(Scenario s);

struct Options {
  std::string url;                  // as given
  std::string host;                 // from the URL, brackets removed for IPv6
  std::uint16_t port = 443;
  std::string path;                 // e.g. /Microsoft-Server-ActiveSync
  std::filesystem::path ca;         // verifies the server certificate

  // Either one identity from files ...
  std::filesystem::path cert;
  std::filesystem::path key;
  // ... or N identities minted from a device CA.
  std::filesystem::path device_ca;
  std::filesystem::path device_ca_key;
  std::uint32_t devices = 0;
  std::string upn_domain = "corp.example.test";

  Scenario scenario = Scenario::sync;
  std::uint32_t connections = 1;
  std::optional<double> duration_s;
  std::optional<std::uint64_t> requests;
  double ping_hold_s = 10;
  std::uint64_t upload_bytes = 10 * 1024 * 1024;
  std::filesystem::path json;
  std::optional<double> rate;       // open-loop requests per second, all threads together
  KeyType key_type = KeyType::p256;
  std::uint32_t threads = 0;        // 0: one per core
  bool resume = false;              // each device's next connection resumes its TLS session from a ticket

  bool minted() const { return !device_ca.empty(); }
};

// Parses and validates argv. On --help prints usage and returns exit code 0 in `exit_code`; on any
// error prints one line "easbench: <problem>" to `err` and sets a non-zero `exit_code`.
struct ParseResult {
  std::optional<Options> options;
  int exit_code = 0;
};
ParseResult parse_options(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

// True when `host` (a name or an address literal, without brackets) is a loopback address:
// 127.0.0.0/8, ::1, or the name "localhost". Load generators may only target loopback here.
bool is_loopback_host(const std::string& host);

}  // namespace easedge::bench
