#include "mapping/map_cert.h"

#include "mapping/account_mapper.h"
#include "mapping/certificate_bindings.h"
#include "mapping/strong_binding.h"

#include <boost/json.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <openssl/x509_vfy.h>

#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <stdexcept>

namespace easedge::mapping {
namespace {

constexpr int exit_mapped = 0;
constexpr int exit_not_mapped = 1;
constexpr int exit_usage = 2;

// The device certificate to explain: the first of a PEM file, or a DER file.
auth::SharedX509 read_certificate(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(file.string() + ": cannot read the file");
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  auto cert = parse_certificate(bytes);
  if (!cert) throw std::runtime_error(file.string() + ": no certificate (PEM or DER) in the file");
  return cert;
}

// The CA in tls.client_ca that signed `leaf`, or null.
auth::SharedX509 issuer_of(X509* leaf, const config::Config& config) {
  if (config.tls.client_ca.empty()) return nullptr;
  for (auto& ca : auth::read_pem_certificates(config.tls.client_ca))
    if (X509_check_issued(ca.get(), leaf) == X509_V_OK && X509_verify(leaf, X509_get0_pubkey(ca.get())) == 1)
      return auth::share(std::move(ca));
  return nullptr;
}

boost::json::value nullable(const std::optional<std::string>& text) {
  return text ? boost::json::value(*text) : boost::json::value(nullptr);
}

}  // namespace

std::shared_ptr<X509> parse_certificate(std::string_view bytes) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())),
                                                BIO_free);
  if (!bio) return nullptr;
  X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (!cert) {
    const auto* der = reinterpret_cast<const unsigned char*>(bytes.data());
    cert = d2i_X509(nullptr, &der, static_cast<long>(bytes.size()));
  }
  ERR_clear_error();
  if (!cert) return nullptr;
  return {cert, X509_free};
}

std::string map_result_json(const MapResult& result, const CertificateBindings& b, config::StrongBinding mode) {
  boost::json::object o;
  o["mapped"] = result.status == MapStatus::mapped;
  if (result.account)
    o["account"] = {{"dn", result.account->dn},
                    {"sAMAccountName", result.account->sam_account_name},
                    {"userPrincipalName", result.account->user_principal_name},
                    {"objectSid", result.account->object_sid}};
  else
    o["account"] = nullptr;
  o["method"] = result.method.empty() ? boost::json::value(nullptr) : boost::json::value(result.method);
  o["strong"] = result.strong;
  o["mode"] = to_string(mode);
  o["reason"] = result.reason.empty() ? boost::json::value(nullptr) : boost::json::value(result.reason);
  boost::json::object bindings{{"issuer_serial", b.issuer_serial},
                               {"ski", nullable(b.ski)},
                               {"sha1_pukey", b.sha1_pukey},
                               {"issuer_subject", nullable(b.issuer_subject)},
                               {"subject", nullable(b.subject)}};
  if (b.rfc822) bindings["rfc822"] = *b.rfc822;
  o["bindings"] = std::move(bindings);
  return boost::json::serialize(o);
}

namespace {

void print_text(const MapResult& result, const CertificateBindings& b, config::StrongBinding mode, X509* leaf,
                X509* issuer, std::ostream& out) {
  out << "certificate:  " << ad_dn(X509_get_subject_name(leaf)) << "\n";
  out << "issued by:    " << ad_dn(X509_get_issuer_name(leaf))
      << (issuer ? "" : "  (not found in tls.client_ca: implicit mapping is not possible)") << "\n";
  if (result.account) {
    const auto& a = *result.account;
    out << "account:      " << a.dn << "\n"
        << "              sAMAccountName " << a.sam_account_name << ", userPrincipalName " << a.user_principal_name
        << ", objectSid " << (a.object_sid.empty() ? "(none)" : a.object_sid) << "\n";
  } else {
    out << "account:      (none)\n";
  }
  out << "method:       " << (result.method.empty() ? "(none)" : result.method) << "\n";
  out << "strong:       " << (result.strong ? "yes" : "no") << "\n";
  out << "mode:         " << to_string(mode) << "\n";
  switch (result.status) {
    case MapStatus::mapped: out << "verdict:      mapped"; break;
    case MapStatus::not_mapped: out << "verdict:      refused"; break;
    case MapStatus::directory_unavailable: out << "verdict:      directory unavailable"; break;
  }
  out << (result.reason.empty() ? "" : ": " + result.reason) << "\n\n";
  out << (result.strong ? "Strong altSecurityIdentities values for this certificate"
                        : "To make this mapping strong, add one of these values to the account's altSecurityIdentities")
      << "\n(issuer+serial, SKI and SHA1-PUKEY name this certificate: a renewed certificate needs a new value):\n";
  out << "  " << b.issuer_serial << "\n";
  if (b.ski) out << "  " << *b.ski << "\n";
  out << "  " << b.sha1_pukey << "\n";
}

}  // namespace

int run_map_cert(const config::Config& config, const std::filesystem::path& cert_file, bool json, std::ostream& out,
                 std::ostream& err) {
  if (!config.mapping) {
    err << "map-cert: " << config.source_file.string() << " has no mapping section\n";
    return exit_usage;
  }
  auth::SharedX509 leaf;
  auth::SharedX509 issuer;
  std::shared_ptr<AccountMapper> mapper;
  try {
    leaf = read_certificate(cert_file);
    issuer = issuer_of(leaf.get(), config);
    mapper = make_account_mapper(*config.mapping);
  } catch (const std::exception& e) {
    err << "map-cert: " << e.what() << "\n";
    return exit_usage;
  }
  std::promise<MapResult> answer;
  mapper->map({leaf, issuer}, [&answer](MapResult result) { answer.set_value(std::move(result)); });
  MapResult result = answer.get_future().get();

  auto bindings = certificate_bindings(leaf.get());
  if (json)
    out << map_result_json(result, bindings, config.mapping->strong_binding) << "\n";
  else
    print_text(result, bindings, config.mapping->strong_binding, leaf.get(), issuer.get(), out);
  return result.status == MapStatus::mapped ? exit_mapped : exit_not_mapped;
}

}  // namespace easedge::mapping
