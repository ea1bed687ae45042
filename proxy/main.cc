// easedge command line: run the proxy, check a configuration, and the administrator's subcommands.
#include "config/config.h"
#include "config/version.h"
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

  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
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
