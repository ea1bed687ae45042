// easedge command line: run the proxy, check a configuration, and the administrator's subcommands.
#include "auth/kerberos/kcd_check.h"
#include "config/config.h"
#include "config/version.h"
#include "mapping/map_cert.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

namespace {

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("easedge");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

// Loads and fully builds a configuration (certificates, keys, CAs, upstream name): what would serve.
std::shared_ptr<const easedge::proxy::Runtime> build_runtime(const std::string& file) {
  return easedge::proxy::Runtime::build(easedge::config::load_config(file));
}

}  // namespace

int main(int argc, char** argv) {
  // OpenSSL writes on sockets itself; a device hanging up must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"easedge: Exchange ActiveSync certificate-authentication edge proxy"};
  app.set_version_flag("--version", std::string("easedge ") + easedge::version_string);
  std::string config_file;
  std::string check_file;
  auto* run_option = app.add_option("--config", config_file, "Run the proxy with this configuration (foreground)");
  auto* check_option =
      app.add_option("--check-config", check_file, "Validate a configuration: exit 0 if valid, else say why");
  run_option->excludes(check_option);

  std::string map_config;
  std::string map_certificate;
  bool map_json = false;
  auto* map_cert = app.add_subcommand("map-cert", "Explain which AD account a certificate maps to, and why");
  map_cert->add_option("--config", map_config, "easedge configuration")->required();
  map_cert->add_option("certificate", map_certificate, "Device certificate (PEM)")->required();
  map_cert->add_flag("--json", map_json, "One JSON object instead of text");

  std::string kcd_config;
  std::string kcd_user;
  auto* kcd_check = app.add_subcommand("kcd-check", "Check Kerberos constrained delegation for one user, step by step");
  kcd_check->add_option("--config", kcd_config, "easedge configuration")->required();
  kcd_check->add_option("--user", kcd_user, "User principal name to impersonate, e.g. alice@corp.example.test")
      ->required();

  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors of the administrator tools exit 2 (map-cert: 0 mapped, 1 not mapped, 2 usage/config).
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (*map_cert || *kcd_check) {
    easedge::config::Config config;
    try {
      config = easedge::config::load_config(*map_cert ? map_config : kcd_config);
    } catch (const std::exception& e) {
      std::cerr << "easedge: " << e.what() << "\n";
      return 2;
    }
    if (*map_cert) return easedge::mapping::run_map_cert(config, map_certificate, map_json, std::cout, std::cerr);
    return easedge::auth::kerberos::run_kcd_check(config, kcd_user, std::cout);
  }

  if (!check_file.empty()) {
    try {
      build_runtime(check_file);
      std::cout << "easedge: " << check_file << ": configuration is valid\n";
      return 0;
    } catch (const std::exception& e) {
      std::cerr << "easedge: " << e.what() << "\n";
      return 1;
    }
  }
  if (config_file.empty()) {
    std::cerr << app.help();
    return 2;
  }

  std::shared_ptr<const easedge::proxy::Runtime> runtime;
  try {
    auto config = easedge::config::load_config(config_file);
    setup_logging(config.log.level);
    runtime = easedge::proxy::Runtime::build(std::move(config));
  } catch (const std::exception& e) {
    std::cerr << "easedge: " << e.what() << "\n";
    return 1;
  }
  try {
    easedge::proxy::Server server(runtime);
    return server.run();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
