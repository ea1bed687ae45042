// OCSP for device certificates: request building and strict response checking with OpenSSL's OCSP_* API.
#pragma once

#include "auth/revocation/crl.h"

#include <openssl/ocsp.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace easedge::auth {

using OwnedOcspRequest = Owned<OCSP_REQUEST, OCSP_REQUEST_free>;

// The http:// OCSP responders named in a certificate's Authority Information Access.
std::vector<std::string> ocsp_urls(X509* cert);

// A request for `leaf` issued by `issuer`, with a nonce. Null when the CERTID cannot be built.
OwnedOcspRequest make_ocsp_request(X509* leaf, X509* issuer);
std::string ocsp_request_der(OCSP_REQUEST* request);

struct OcspVerdict {
  enum class Kind { good, revoked, unknown, invalid };
  Kind kind = Kind::invalid;
  std::string detail;                // invalid: what was wrong; revoked: "revoked <time> (<reason>)"
  SystemTime this_update;
  std::optional<SystemTime> next_update;
};

// Checks a DER OCSPResponse for `request`: successful status, signature by the issuing CA or a responder it
// delegated (id-kp-OCSPSigning) chained to `store`, nonce not mismatched, times valid within `leeway`.
OcspVerdict check_ocsp_response(std::string_view der, OCSP_REQUEST* request, X509* leaf, X509* issuer,
                                X509_STORE* store, std::chrono::seconds leeway);

}  // namespace easedge::auth
