// libFuzzer target: the body of POST /api/explain (a certificate an operator pastes, perhaps taken from a hostile
// device) through the console's explain handler: PEM/DER parsing, chain verification, the revocation check and
// the JSON the browser renders, which must parse and never hold a raw '<'.
#include "proxy/console/explain.h"

#include "tests/fuzz/revocation_fuzz_pki.h"

#include <boost/json/parse.hpp>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace {

using namespace easedge;

void check(bool invariant) {
  if (!invariant) std::abort();
}

// A runtime that trusts the fuzz CA (revocation_fuzz_pki.h) and has no mapping section: no directory to ask.
std::shared_ptr<const proxy::Runtime> make_runtime() {
  auto dir = std::filesystem::temp_directory_path() / ("console-explain-fuzz-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "ca.pem") << fuzz::ca_pem;
  auto runtime = std::make_shared<proxy::Runtime>();
  runtime->config.source_file = dir / "easedge.yaml";
  runtime->config.tls.client_ca = dir / "ca.pem";
  runtime->validator = std::make_unique<auth::CertificateValidator>(runtime->config.tls, runtime->config.source_file, 64);
  runtime->revocation = auth::RevocationChecker::create(runtime->config.tls);
  return runtime;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto runtime = make_runtime();
  bool answered = false;
  proxy::console::explain_certificate(
      runtime, std::string_view(reinterpret_cast<const char*>(data), size), [&](unsigned status, std::string json) {
        answered = true;
        check(status == 200 || status == 400);
        check(json.find_first_of("<>&") == std::string::npos);
        auto value = boost::json::parse(json);
        check(value.is_object());
      });
  check(answered);  // no mapper: the answer is always inline
  return 0;
}
