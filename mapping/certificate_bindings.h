// What Windows reads from a device certificate to find its account: altSecurityIdentities strings,
// the UPN, the e-mail address and the KB5014754 SID, with the parsing of stored binding values.
#pragma once

#include "auth/client_certificate.h"

#include <openssl/x509.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace easedge::mapping {

// The six explicit mapping formats, in the order the mapper prefers them (strong ones first).
enum class BindingKind { issuer_serial, ski, sha1_pukey, issuer_subject, subject, rfc822 };

// "altsec:issuer-serial", "altsec:ski", ... (the method names map-cert and the logs print).
const char* method_name(BindingKind kind);
// KB5014754: issuer+serial, SKI and SHA1-PUKEY are strong; the others are weak.
bool is_strong(BindingKind kind);

// A name as Windows writes it in altSecurityIdentities: RDNs in encoded order, "," between RDNs and
// "+" inside a multi-valued RDN (no spaces), AD attribute names (CN, OU, O, L, S, C, DC, E, ...,
// "OID.x.y.z" for unknown types), UTF-8 values, CertNameToStr quoting ("O=""Contoso, Inc.""").
std::string ad_dn(const X509_NAME* name);

// The exact altSecurityIdentities values an administrator can add for a certificate (Windows forms).
struct CertificateBindings {
  std::string issuer_serial;                   // X509:<I>IssuerDN<SR>serial bytes reversed, hex
  std::optional<std::string> ski;              // X509:<SKI>hex; absent without an SKI extension
  std::string sha1_pukey;                      // X509:<SHA1-PUKEY>SHA-1 thumbprint of the certificate
  std::optional<std::string> issuer_subject;   // X509:<I>IssuerDN<S>SubjectDN; absent with an empty subject
  std::optional<std::string> subject;          // X509:<S>SubjectDN; absent with an empty subject
  std::optional<std::string> rfc822;           // X509:<RFC822>email; absent without a SAN e-mail
};
CertificateBindings certificate_bindings(X509* cert);

// One stored value that would identify this certificate, already normalized for comparison.
struct BindingCandidate {
  BindingKind kind;
  std::string value;
};
// Every altSecurityIdentities value that matches this certificate, normalized, strong kinds first:
// the Windows forms plus the variants tolerated when reading (serial in Samba's byte order, serial without
// the DER sign byte;
// SHA1-PUKEY as the thumbprint, the hash of the public key bits, or the hash of SubjectPublicKeyInfo).
std::vector<BindingCandidate> binding_candidates(X509* cert);

// The comparison form of a stored altSecurityIdentities value: "X509:" prefix in any case, optional
// spaces after it (some tools write "X509: <RFC822>"), then ASCII upper-case. nullopt when the value is
// not an X509 mapping with a known tag (Kerberos: mappings and garbage are ignored).
std::optional<std::string> normalize_alt_security_identity(std::string_view stored);

// The UPN of a certificate (SAN otherName 1.3.6.1.4.1.311.20.2.3), shared with the TLS side.
using auth::upn_of;
// SAN rfc822Name; "" when absent.
std::string email_of(X509* cert);

// The SID a certificate claims (KB5014754): extension 1.3.6.1.4.1.311.25.2 or SAN URI
// tag:microsoft.com,2022-09-14:sid:<SID>.
struct CertificateSid {
  enum class State {
    absent,     // neither form present
    present,    // `sid` holds the canonical text
    malformed,  // a form is present but does not hold a valid SID
    conflict,   // the two forms name different SIDs
  };
  State state = State::absent;
  std::string sid;
};
CertificateSid sid_of(X509* cert);

// Parses the DER value of the SID extension (a GeneralNames holding otherName 1.3.6.1.4.1.311.25.2.1
// with an OCTET STRING "S-1-..."): the canonical SID, or nullopt. Bounds-checked (OpenSSL d2i).
std::optional<std::string> sid_from_extension(const unsigned char* der, long length);

// Lower-case hex of bytes.
std::string hex_of(const unsigned char* data, std::size_t size);

}  // namespace easedge::mapping
