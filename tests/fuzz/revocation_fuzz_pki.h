// A fixed CA and device certificate (P-256, valid 2026-2126) for the revocation fuzzers, so the committed CRL and
// OCSP seeds, signed by this CA's key, verify and reach the code after the signature check.
// Made with `openssl req -x509` and `openssl ca` (serial 1000 = the device, 1001 revoked, 1002 an OCSP responder);
// the CRL is that CA's base CRL (number 1, 1001 revoked), the one a fuzzed delta CRL can apply to.
#pragma once

#include "auth/revocation/crl.h"

#include <openssl/pem.h>

#include <string_view>

namespace easedge::fuzz {

inline constexpr std::string_view ca_pem = R"(
-----BEGIN CERTIFICATE-----
MIIBjDCCATGgAwIBAgIUenv3sO6AFmvBEgDr6RMzZ+Xo0+swCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHRnV6eiBDQTAgFw0yNjEyMDQxNTIzMzBaGA8yMTI2MTExMDE1
MjMzMFowEjEQMA4GA1UEAwwHRnV6eiBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABFh4R1JjI7dATuMO9y30ahdUcC9ypbZjy6xOEJJwqJ8i7CoZ8GNQ0qUBjp3F
4S/DCnEXgXATG59QPcr0zUkvK3WjYzBhMB0GA1UdDgQWBBTtQ3X/sZSi5PH83sxi
cUBBUSut7TAfBgNVHSMEGDAWgBTtQ3X/sZSi5PH83sxicUBBUSut7TAPBgNVHRMB
Af8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggqhkjOPQQDAgNJADBGAiEA9B4d
SM+qFtunBDKvHKt7XWdse+kBPvM32oCdkIcmPOMCIQDgfB3ZOgD6shp4vvAXQhk1
QHFwugvdB13r2aoI/xmlBA==
-----END CERTIFICATE-----
)";

inline constexpr std::string_view leaf_pem = R"(
-----BEGIN CERTIFICATE-----
MIIB7zCCAZWgAwIBAgICEAAwCgYIKoZIzj0EAwIwEjEQMA4GA1UEAwwHRnV6eiBD
QTAgFw0yNjEyMDQxNTIzMzBaGA8yMTI2MTExMDE1MjMzMFowDzENMAsGA1UEAwwE
bGVhZjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOAaU9QedjPTf/SA63ULaqFV
g6kmICaYqZhFQHOLM6hdcQwfCmPEfpt1nSPoHl9H2z2ODcqFk6d9pqZ1kTT9R1ij
gdswgdgwCQYDVR0TBAIwADALBgNVHQ8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUH
AwIwLwYDVR0fBCgwJjAkoCKgIIYeaHR0cDovL3BraS5leGFtcGxlLnRlc3QvY2Eu
Y3JsMDgGCCsGAQUFBwEBBCwwKjAoBggrBgEFBQcwAYYcaHR0cDovL3BraS5leGFt
cGxlLnRlc3Qvb2NzcDAdBgNVHQ4EFgQUIIrwPh2uYdZjBzvQ2ztJU4K4F7cwHwYD
VR0jBBgwFoAU7UN1/7GUouTx/N7MYnFAQVErre0wCgYIKoZIzj0EAwIDSAAwRQIg
RsxTa58WNmG2pOrIyahp4hQWD56lW0dlvHXwfg/Y+cACIQD8fXJqu8bbrdb7HFxB
EWYATwXCiVYEwM6/YugKG9S3vQ==
-----END CERTIFICATE-----
)";

inline constexpr std::string_view crl_pem = R"(
-----BEGIN X509 CRL-----
MIIBJzCBzQIBATAKBggqhkjOPQQDAjASMRAwDgYDVQQDDAdGdXp6IENBFw0yNjEy
MDQxNTIzMzBaGA8yMTI2MTExMDE1MjMzMFowIzAhAgIQARcNMjYxMjA0MTUyMzMw
WjAMMAoGA1UdFQQDCgEBoGMwYTAfBgNVHSMEGDAWgBTtQ3X/sZSi5PH83sxicUBB
USut7TAyBgNVHS4EKzApMCegJaAjhiFodHRwOi8vcGtpLmV4YW1wbGUudGVzdC9k
ZWx0YS5jcmwwCgYDVR0UBAMCAQEwCgYIKoZIzj0EAwIDSQAwRgIhANQ8KCZ/req9
imbCxRVh6IyCU63VRavqMTHSkguBLj1EAiEAsg1nudQwLyFLsjDQ6lC3U3XA+vKz
L0zNrdpFg00d4m8=
-----END X509 CRL-----
)";

inline auth::OwnedX509 pem_certificate(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  auth::OwnedX509 cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return cert;
}

}  // namespace easedge::fuzz
