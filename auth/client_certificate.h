// What the proxy knows about a device's certificate once the TLS handshake is done: verdict and identity.
#pragma once

#include "auth/openssl.h"

#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>

namespace easedge::auth {

// The chain verdict, before revocation (revocation data changes; the chain verdict does not).
enum class ChainStatus {
  absent,         // the device sent no certificate
  valid,          // chains to a trusted CA, in its validity period, EKU allows clientAuth
  expired,        // the certificate or a CA above it has expired
  not_yet_valid,  // notBefore is in the future
  wrong_usage,    // EKU present without clientAuth
  untrusted,      // no chain to a trusted CA, bad signature, or otherwise invalid
};

// Immutable; shared by every connection that presents the same certificate.
struct ClientCertificate {
  ChainStatus status = ChainStatus::absent;
  std::string detail;              // why, in OpenSSL's words, for the log and the refusal body
  SharedX509 leaf;
  SharedX509 issuer;                 // the CA that signed the leaf (from the verified chain); may be null
  std::string sha256_hex;          // of the DER certificate, lower-case hex
  std::string subject;             // RFC 2253
  std::string upn;                 // SAN otherName 1.3.6.1.4.1.311.20.2.3; empty if none
  std::chrono::system_clock::time_point valid_until;  // earliest notAfter on the verified chain
};

// SAN otherName UPN (1.3.6.1.4.1.311.20.2.3, UTF8String) of `cert`, or "" when there is none.
std::string upn_of(X509* cert);
std::string sha256_hex_of(X509* cert);

}  // namespace easedge::auth
