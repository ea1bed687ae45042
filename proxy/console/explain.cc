// Explain a certificate: parse, verify, check revocation, map (through mapping/map_cert).
#include "proxy/console/explain.h"

#include "auth/revocation/crl.h"
#include "mapping/map_cert.h"
#include "proxy/console/console_api.h"

#include <boost/json/parse.hpp>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/x509.h>

namespace easedge::proxy::console {
namespace {

namespace json = boost::json;

const char* chain_status_name(auth::ChainStatus status) {
  switch (status) {
    case auth::ChainStatus::absent: return "absent";
    case auth::ChainStatus::valid: return "valid";
    case auth::ChainStatus::expired: return "expired";
    case auth::ChainStatus::not_yet_valid: return "not_yet_valid";
    case auth::ChainStatus::wrong_usage: return "wrong_usage";
    case auth::ChainStatus::untrusted: return "untrusted";
  }
  return "untrusted";
}

const char* revocation_status_name(auth::RevocationStatus status) {
  switch (status) {
    case auth::RevocationStatus::good: return "good";
    case auth::RevocationStatus::revoked: return "revoked";
    case auth::RevocationStatus::unavailable: return "unavailable";
  }
  return "unavailable";
}

// The toolkit's conversion: clamped, so a certificate valid until 9999 cannot overflow the clock.
std::string time_text(const ASN1_TIME* t) {
  auto time = auth::time_of(t);
  return time ? auth::format_time(*time) : std::string();
}

std::string serial_text(X509* cert) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr), BN_free);
  if (!bn) return {};
  std::unique_ptr<char, void (*)(char*)> hex(BN_bn2hex(bn.get()), [](char* p) { OPENSSL_free(p); });
  return hex ? std::string(hex.get()) : std::string();
}

json::object certificate_json(X509* leaf) {
  auto upn = auth::upn_of(leaf);
  return {{"subject", auth::rfc2253(X509_get_subject_name(leaf))},
          {"issuer", auth::rfc2253(X509_get_issuer_name(leaf))},
          {"serial", serial_text(leaf)},
          {"not_before", time_text(X509_get0_notBefore(leaf))},
          {"not_after", time_text(X509_get0_notAfter(leaf))},
          {"sha256", auth::sha256_hex_of(leaf)},
          {"upn", upn.empty() ? json::value(nullptr) : json::value(upn)}};
}

}  // namespace

void explain_certificate(std::shared_ptr<const Runtime> runtime, std::string_view bytes,
                         std::function<void(unsigned status, std::string json)> done) {
  auto leaf = mapping::parse_certificate(bytes);
  if (!leaf) return done(400, serialize_for_browser({{"error", "no certificate (PEM or DER) in the request"}}));
  json::object out{{"certificate", certificate_json(leaf.get())}};

  auto verdict = runtime->validator->verify(leaf.get(), nullptr);
  out["chain"] = {{"status", chain_status_name(verdict->status)}, {"detail", verdict->detail}};
  std::shared_ptr<X509> issuer = verdict->issuer;
  if (issuer) {
    auto answer = runtime->revocation->check(leaf.get(), issuer.get());
    out["revocation"] = {{"status", revocation_status_name(answer.status)},
                         {"reason", answer.reason},
                         {"admitted", answer.admits()}};
  } else {
    out["revocation"] = {{"status", "unknown"}, {"reason", "no trusted issuer: revocation cannot be checked"},
                         {"admitted", false}};
  }
  out["on_unavailable"] =
      runtime->config.tls.revocation.on_unavailable == config::RevocationFallback::allow ? "allow" : "deny";

  if (!runtime->mapper || !runtime->config.mapping) {
    out["mapping"] = nullptr;
    out["mapping_note"] = "no mapping section: the identity is the certificate's UPN";
    return done(200, serialize_for_browser(out));
  }
  const auto mode = runtime->config.mapping->strong_binding;
  auto bindings = mapping::certificate_bindings(leaf.get());
  auto mapper = runtime->mapper;
  mapper->map({leaf, issuer}, [out = std::move(out), bindings = std::move(bindings), mode, runtime,
                               done = std::move(done)](mapping::MapResult result) mutable {
    out["mapping"] = json::parse(mapping::map_result_json(result, bindings, mode));
    done(200, serialize_for_browser(out));
  });
}

}  // namespace easedge::proxy::console
