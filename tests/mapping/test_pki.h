// Builds certificates inside the tests (OpenSSL APIs, P-256 keys): any subject, serial, SAN and SID.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace easedge::mapping::testing {

using X509Ptr = std::shared_ptr<X509>;
using KeyPtr = std::shared_ptr<EVP_PKEY>;

// One RDN: one or more (attribute, UTF-8 value) pairs; more than one makes a multi-valued RDN.
using Rdn = std::vector<std::pair<std::string, std::string>>;
using Name = std::vector<Rdn>;

struct CertSpec {
  Name subject;
  std::vector<unsigned char> serial{0x01, 0x23, 0x45};  // DER content bytes of the INTEGER
  std::string upn;                                      // SAN otherName; "" = none
  std::string email;                                    // SAN rfc822Name; "" = none
  std::vector<std::string> uris;                        // SAN URIs
  std::optional<std::string> sid_extension;             // text put in the 1.3.6.1.4.1.311.25.2 extension
  bool ski = true;
  long not_before_offset = -3600;  // seconds from now
  long lifetime = 86400;
};

struct Issued {
  X509Ptr cert;
  KeyPtr key;
};

class TestPki {
public:
  // A self-signed CA with `name`.
  Issued make_ca(const Name& name);
  Issued issue(const CertSpec& spec, const Issued& ca);

private:
  KeyPtr new_key();
};

// A fresh folder named after the running test, removed with the object.
class TestDir {
public:
  explicit TestDir(const std::string& prefix);
  ~TestDir();
  const std::filesystem::path& path() const { return path_; }

private:
  std::filesystem::path path_;
};

// The DER of the SID extension value for `sid` (GeneralNames with otherName 1.3.6.1.4.1.311.25.2.1).
std::vector<unsigned char> sid_extension_der(const std::string& sid);
std::string to_pem(X509* cert);

}  // namespace easedge::mapping::testing
