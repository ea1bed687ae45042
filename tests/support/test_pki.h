// Mints certificates for the tests (OpenSSL APIs, P-256 keys): any subject, serial, validity, SAN, SID and extension.
#pragma once

#include "auth/openssl.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace easedge::testing {

// One RDN: one or more (attribute, UTF-8 value) pairs; more than one makes a multi-valued RDN.
using Rdn = std::vector<std::pair<std::string, std::string>>;
using Name = std::vector<Rdn>;
// CN=`common_name`
Name common_name(const std::string& common_name);

struct CertSpec {
  Name subject;
  std::vector<unsigned char> serial{0x01, 0x23, 0x45};  // DER content bytes of the INTEGER
  std::string upn;                                      // SAN otherName; "" = none
  std::string email;                                    // SAN rfc822Name; "" = none
  std::vector<std::string> uris;                        // SAN URIs
  std::optional<std::string> sid_extension;             // text put in the 1.3.6.1.4.1.311.25.2 extension
  bool ca = false;                                      // basicConstraints critical,CA:TRUE
  bool ski = true;
  // More extensions in OpenSSL's config syntax, e.g. {"extendedKeyUsage", "clientAuth"}.
  std::vector<std::pair<std::string, std::string>> extensions;
  long not_before_offset = -3600;  // seconds from now
  long lifetime = 86400;
};

struct Issued {
  auth::SharedX509 cert;
  std::shared_ptr<EVP_PKEY> key;
};

// A fresh P-256 key.
std::shared_ptr<EVP_PKEY> make_key();
// A self-signed CA named `name`.
Issued make_ca(const Name& name);
// A certificate for `spec` signed by `ca`; self-signed when `ca` has no certificate.
Issued issue(const CertSpec& spec, const Issued& ca);
// The DER content bytes of a positive INTEGER `serial`, as CertSpec::serial takes them.
std::vector<unsigned char> serial_content(long serial);

// The DER of the SID extension value for `sid` (GeneralNames with otherName 1.3.6.1.4.1.311.25.2.1).
std::vector<unsigned char> sid_extension_der(const std::string& sid);
std::string to_pem(X509* cert);
std::string to_pem(EVP_PKEY* key);  // unencrypted PKCS#8
std::string to_pem(X509_CRL* crl);

// A fresh temporary folder, removed with its contents at destruction.
class TempDir {
public:
  explicit TempDir(const std::string& prefix = "easedge-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to the file `name` in the folder; returns its path.
  std::filesystem::path write(const std::string& name, const std::string& content) const;

private:
  std::filesystem::path path_;
};

}  // namespace easedge::testing
