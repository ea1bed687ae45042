// Test driver for the mapping library until the proxy wires it in:
//   mapping_probe map-cert --config FILE CERT [--json]   same as `easedge map-cert`
//   mapping_probe serve --config FILE                    one long-lived mapper: reads "CERT ISSUER" paths per
//                                                        line on stdin, prints the map-cert JSON per line
#include "config/config.h"
#include "mapping/account_mapper.h"
#include "mapping/map_cert.h"

#include <CLI/CLI.hpp>

#include <future>
#include <iostream>
#include <sstream>

namespace {

using namespace easedge;

int serve(const config::Config& config) {
  auto mapper = mapping::make_account_mapper(*config.mapping);
  std::cout << "ready" << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string cert_file;
    std::string issuer_file;
    words >> cert_file >> issuer_file;
    if (cert_file.empty()) continue;
    auto leaf = auth::share(std::move(auth::read_pem_certificates(cert_file).front()));
    auto issuer = auth::share(std::move(auth::read_pem_certificates(issuer_file).front()));
    std::promise<mapping::MapResult> answer;
    mapper->map({leaf, issuer}, [&answer](mapping::MapResult r) { answer.set_value(std::move(r)); });
    auto result = answer.get_future().get();
    std::cout << mapping::map_result_json(result, mapping::certificate_bindings(leaf.get()),
                                          config.mapping->strong_binding)
              << std::endl;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mapping test driver"};
  app.require_subcommand(1);
  std::string config_file;
  std::string cert;
  bool json = false;
  auto* map_cert = app.add_subcommand("map-cert", "explain how a certificate maps");
  map_cert->add_option("--config", config_file)->required();
  map_cert->add_option("cert", cert)->required();
  map_cert->add_flag("--json", json);
  auto* serve_command = app.add_subcommand("serve", "map certificates named on stdin with one mapper");
  serve_command->add_option("--config", config_file)->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  config::Config config;
  try {
    config = config::load_config(config_file);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  if (*map_cert) return mapping::run_map_cert(config, cert, json, std::cout, std::cerr);
  return serve(config);
}
