// libFuzzer target: an OCSP responder's answer body, through check_ocsp_response for a fixed device certificate
// and its CA (decoding, status, nonce, signer trust, the certificate's entry and its validity window), plus
// the responder and CRL URLs read from a certificate's extensions.
#include "auth/revocation/ocsp.h"
#include "tests/fuzz/revocation_fuzz_pki.h"

#include <cstdint>
#include <cstdlib>

namespace {

using namespace easedge::auth;

void check(bool invariant) {
  if (!invariant) std::abort();
}

struct Pki {
  OwnedX509 ca = easedge::fuzz::pem_certificate(easedge::fuzz::ca_pem);
  OwnedX509 leaf = easedge::fuzz::pem_certificate(easedge::fuzz::leaf_pem);
  OwnedX509Store store{X509_STORE_new()};
  // With a nonce, like every request easedge sends; the committed seeds have none, which is accepted.
  OwnedOcspRequest request;
  Pki() {
    check(ca && leaf && store && X509_STORE_add_cert(store.get(), ca.get()) == 1);
    request = make_ocsp_request(leaf.get(), ca.get());
    check(request != nullptr);
  }
};

void exercise_certificate(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  OwnedX509 cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return;
  for (const auto& url : ocsp_urls(cert.get())) check(url.starts_with("http://"));
  for (const auto& url : crl_urls(cert.get())) check(url.starts_with("http://"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Pki pki;
  std::string_view der(reinterpret_cast<const char*>(data), size);
  OcspVerdict verdict = check_ocsp_response(der, pki.request.get(), pki.leaf.get(), pki.ca.get(), pki.store.get(),
                                            std::chrono::minutes(5));
  using Kind = OcspVerdict::Kind;
  check(verdict.kind != Kind::invalid || !verdict.detail.empty());
  check(verdict.kind != Kind::revoked || verdict.detail.starts_with("revoked "));
  check(verdict.kind != Kind::good || verdict.detail.empty());
  exercise_certificate(der);
  return 0;
}
