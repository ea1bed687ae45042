// Building OCSP requests and verifying OCSP responses.
#include "auth/revocation/ocsp.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace easedge::auth {
namespace {

using OwnedOcspResponse = Owned<OCSP_RESPONSE, OCSP_RESPONSE_free>;
using OwnedBasicResponse = Owned<OCSP_BASICRESP, OCSP_BASICRESP_free>;
using OwnedCertId = Owned<OCSP_CERTID, OCSP_CERTID_free>;
struct X509StackFree {  // sk_X509_free is a macro, so it cannot be a template argument
  void operator()(STACK_OF(X509)* stack) const { sk_X509_free(stack); }
};
using OwnedX509Stack = std::unique_ptr<STACK_OF(X509), X509StackFree>;

OcspVerdict invalid(std::string detail) {
  ERR_clear_error();
  return {OcspVerdict::Kind::invalid, std::move(detail), {}, std::nullopt};
}

}  // namespace

std::vector<std::string> ocsp_urls(X509* cert) {
  std::vector<std::string> out;
  STACK_OF(OPENSSL_STRING)* urls = X509_get1_ocsp(cert);
  for (int i = 0; i < sk_OPENSSL_STRING_num(urls); ++i) {
    std::string url = sk_OPENSSL_STRING_value(urls, i);
    if (url.rfind("http://", 0) == 0) out.push_back(std::move(url));
  }
  X509_email_free(urls);  // the documented way to free X509_get1_ocsp's stack
  return out;
}

OwnedOcspRequest make_ocsp_request(X509* leaf, X509* issuer) {
  OwnedOcspRequest request(OCSP_REQUEST_new());
  OCSP_CERTID* id = OCSP_cert_to_id(nullptr, leaf, issuer);
  if (!request || !id || !OCSP_request_add0_id(request.get(), id)) {
    OCSP_CERTID_free(id);
    ERR_clear_error();
    return nullptr;
  }
  OCSP_request_add1_nonce(request.get(), nullptr, -1);
  return request;
}

std::string ocsp_request_der(OCSP_REQUEST* request) {
  unsigned char* der = nullptr;
  int size = i2d_OCSP_REQUEST(request, &der);
  if (size <= 0) return {};
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(size));
  OPENSSL_free(der);
  return out;
}

OcspVerdict check_ocsp_response(std::string_view der, OCSP_REQUEST* request, X509* leaf, X509* issuer,
                                X509_STORE* store, std::chrono::seconds leeway) {
  auto* p = reinterpret_cast<const unsigned char*>(der.data());
  OwnedOcspResponse response(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size())));
  if (!response) return invalid("not an OCSP response");
  if (p != reinterpret_cast<const unsigned char*>(der.data()) + der.size())
    return invalid("trailing bytes after the OCSP response");
  const int response_status = OCSP_response_status(response.get());
  if (response_status != OCSP_RESPONSE_STATUS_SUCCESSFUL)
    return invalid(std::string("responder said ") + OCSP_response_status_str(response_status));
  OwnedBasicResponse basic(OCSP_response_get1_basic(response.get()));
  if (!basic) return invalid("no basic OCSP response");
  if (OCSP_check_nonce(request, basic.get()) == 0) return invalid("nonce mismatch (replayed answer?)");

  // The issuer is offered as a possible signer; OCSP_basic_verify then requires the signer to be the CA
  // itself or a responder certificate it issued with id-kp-OCSPSigning, chained to the trusted store.
  OwnedX509Stack signers(sk_X509_new_null());
  sk_X509_push(signers.get(), issuer);
  if (OCSP_basic_verify(basic.get(), signers.get(), store, 0) != 1) return invalid("signature or responder not trusted");

  OwnedCertId id(OCSP_cert_to_id(nullptr, leaf, issuer));
  int status = -1;
  int reason = -1;
  ASN1_GENERALIZEDTIME* revoked_at = nullptr;
  ASN1_GENERALIZEDTIME* this_update = nullptr;
  ASN1_GENERALIZEDTIME* next_update = nullptr;
  if (!id || OCSP_resp_find_status(basic.get(), id.get(), &status, &reason, &revoked_at, &this_update, &next_update) != 1)
    return invalid("answer does not mention the certificate");
  if (OCSP_check_validity(this_update, next_update, static_cast<long>(leeway.count()), -1) != 1)
    return invalid("answer is outside its validity period");

  OcspVerdict verdict;
  verdict.this_update = time_of(this_update).value_or(SystemTime{});
  if (next_update) verdict.next_update = time_of(next_update).value_or(SystemTime{});
  switch (status) {
    case V_OCSP_CERTSTATUS_GOOD:
      verdict.kind = OcspVerdict::Kind::good;
      break;
    case V_OCSP_CERTSTATUS_REVOKED:
      verdict.kind = OcspVerdict::Kind::revoked;
      verdict.detail = "revoked " + format_time(time_of(revoked_at).value_or(SystemTime{})) + " (" + crl_reason_text(reason) + ")";
      break;
    default:
      verdict.kind = OcspVerdict::Kind::unknown;
      verdict.detail = "responder does not know the certificate";
      break;
  }
  ERR_clear_error();
  return verdict;
}

}  // namespace easedge::auth
