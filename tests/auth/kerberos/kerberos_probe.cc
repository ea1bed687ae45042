// Test driver for the integration tests: runs kcd-check, or serves Delegator::token_for over stdin/stdout.
//   kerberos_probe CONFIG kcd-check USER   -> kcd-check's report on stdout, its exit code
//   kerberos_probe CONFIG serve            -> one command per line on stdin, one answer line each:
//     token UPN   -> "ok inline|worker Negotiate ..." or "fail KIND MESSAGE"
//     forget UPN  -> "ok"
//     stats       -> "stats hits=N exchanges=N refused=N setup=N unavailable=N cached=N"
#include "auth/kerberos/delegator.h"
#include "auth/kerberos/kcd_check.h"
#include "config/config.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <future>
#include <iostream>
#include <sstream>
#include <thread>

namespace kerberos = easedge::auth::kerberos;

namespace {

int serve(kerberos::Delegator& delegator) {
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string command, argument;
    words >> command >> argument;
    if (command == "token") {
      std::promise<std::pair<kerberos::TokenResult, bool>> answer;
      auto caller = std::this_thread::get_id();
      delegator.token_for(argument, [&answer, caller](kerberos::TokenResult result) {
        answer.set_value({std::move(result), std::this_thread::get_id() == caller});
      });
      auto [result, inline_call] = answer.get_future().get();
      if (result) {
        std::cout << "ok " << (inline_call ? "inline " : "worker ") << *result << std::endl;
      } else {
        std::cout << "fail " << kerberos::to_string(result.error().kind) << " " << result.error().message << std::endl;
      }
    } else if (command == "forget") {
      delegator.forget(argument);
      std::cout << "ok" << std::endl;
    } else if (command == "stats") {
      auto s = delegator.stats();
      std::cout << "stats hits=" << s.cache_hits << " exchanges=" << s.kdc_exchanges << " refused=" << s.user_refused
                << " setup=" << s.setup_errors << " unavailable=" << s.kdc_unavailable << " cached=" << s.cached_users
                << std::endl;
    } else {
      std::cout << "error unknown command '" << command << "'" << std::endl;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: kerberos_probe CONFIG kcd-check USER | kerberos_probe CONFIG serve\n";
    return 2;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("probe"));  // stdout carries the answers
  try {
    auto config = easedge::config::load_config(argv[1]);
    std::string mode = argv[2];
    if (mode == "kcd-check" && argc == 4) return kerberos::run_kcd_check(config, argv[3], std::cout);
    if (mode == "serve" && config.upstream.kerberos) {
      kerberos::Delegator delegator(*config.upstream.kerberos);
      delegator.warm_up();
      return serve(delegator);
    }
  } catch (const std::exception& e) {
    std::cerr << "kerberos_probe: " << e.what() << "\n";
    return 2;
  }
  std::cerr << "kerberos_probe: bad arguments\n";
  return 2;
}
