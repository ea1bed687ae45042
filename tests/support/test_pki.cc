// Certificate minting for the tests, with the OpenSSL API so every field is under the test's control.
#include "tests/support/test_pki.h"

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace easedge::testing {
namespace {

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what);
}

X509_NAME* build_name(const Name& name) {
  X509_NAME* out = X509_NAME_new();
  for (const Rdn& rdn : name) {
    for (std::size_t i = 0; i < rdn.size(); ++i) {
      int set = i == 0 ? 0 : -1;  // 0: a new RDN; -1: join the previous one (multi-valued RDN)
      check(X509_NAME_add_entry_by_txt(out, rdn[i].first.c_str(), MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(rdn[i].second.data()),
                                       static_cast<int>(rdn[i].second.size()), -1, set) == 1,
            "name entry");
    }
  }
  return out;
}

ASN1_INTEGER* serial_from_content(const std::vector<unsigned char>& content) {
  std::vector<unsigned char> der{0x02, static_cast<unsigned char>(content.size())};
  der.insert(der.end(), content.begin(), content.end());
  const unsigned char* p = der.data();
  ASN1_INTEGER* serial = d2i_ASN1_INTEGER(nullptr, &p, static_cast<long>(der.size()));
  check(serial != nullptr, "serial");
  return serial;
}

GENERAL_NAME* other_name(const char* oid, ASN1_TYPE* value) {
  GENERAL_NAME* name = GENERAL_NAME_new();
  check(GENERAL_NAME_set0_othername(name, OBJ_txt2obj(oid, 1), value) == 1, "otherName");
  return name;
}

ASN1_TYPE* string_value(int type, const std::string& text) {
  ASN1_STRING* s = ASN1_STRING_type_new(type);
  ASN1_STRING_set(s, text.data(), static_cast<int>(text.size()));
  ASN1_TYPE* value = ASN1_TYPE_new();
  ASN1_TYPE_set(value, type, s);
  return value;
}

GENERAL_NAME* ia5_name(int type, const std::string& text) {
  ASN1_IA5STRING* s = ASN1_IA5STRING_new();
  ASN1_STRING_set(s, text.data(), static_cast<int>(text.size()));
  GENERAL_NAME* name = GENERAL_NAME_new();
  GENERAL_NAME_set0_value(name, type, s);
  return name;
}

// Runs `write` on a memory BIO and returns what it wrote.
template <typename Write>
std::string memory_text(Write write) {
  auth::OwnedBio bio(BIO_new(BIO_s_mem()));
  write(bio.get());
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace

Name common_name(const std::string& common_name) { return Name{{{"CN", common_name}}}; }

std::vector<unsigned char> serial_content(long serial) {
  std::vector<unsigned char> content;
  for (; serial > 0; serial >>= 8) content.insert(content.begin(), static_cast<unsigned char>(serial & 0xff));
  if (content.empty() || content.front() & 0x80) content.insert(content.begin(), 0);  // stays positive
  return content;
}

TempDir::TempDir(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  check(mkdtemp(pattern.data()) != nullptr, "mkdtemp");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path TempDir::write(const std::string& name, const std::string& content) const {
  auto file = path_ / name;
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << content;
  check(static_cast<bool>(out), "write");
  return file;
}

std::vector<unsigned char> sid_extension_der(const std::string& sid) {
  GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
  sk_GENERAL_NAME_push(names, other_name("1.3.6.1.4.1.311.25.2.1", string_value(V_ASN1_OCTET_STRING, sid)));
  unsigned char* der = nullptr;
  int length = i2d_GENERAL_NAMES(names, &der);
  GENERAL_NAMES_free(names);
  check(length > 0, "SID extension");
  std::vector<unsigned char> out(der, der + length);
  OPENSSL_free(der);
  return out;
}

std::string to_pem(X509* cert) {
  return memory_text([&](BIO* bio) { PEM_write_bio_X509(bio, cert); });
}

std::string to_pem(EVP_PKEY* key) {
  return memory_text([&](BIO* bio) { PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr); });
}

std::string to_pem(X509_CRL* crl) {
  return memory_text([&](BIO* bio) { PEM_write_bio_X509_CRL(bio, crl); });
}

std::shared_ptr<EVP_PKEY> make_key() {
  auth::OwnedPkey key(EVP_EC_gen("P-256"));
  check(key != nullptr, "key");
  return std::shared_ptr<EVP_PKEY>(std::move(key));
}

Issued make_ca(const Name& name) {
  CertSpec spec;
  spec.subject = name;
  spec.serial = {0x10};
  spec.ca = true;
  return issue(spec, Issued{});
}

Issued issue(const CertSpec& spec, const Issued& ca) {
  Issued out{auth::share(auth::OwnedX509(X509_new())), make_key()};
  X509* cert = out.cert.get();
  bool self_signed = ca.cert == nullptr;
  X509_set_version(cert, 2);
  ASN1_INTEGER* serial = serial_from_content(spec.serial);
  X509_set_serialNumber(cert, serial);
  ASN1_INTEGER_free(serial);
  X509_NAME* subject = build_name(spec.subject);
  X509_set_subject_name(cert, subject);
  X509_set_issuer_name(cert, self_signed ? subject : X509_get_subject_name(ca.cert.get()));
  X509_NAME_free(subject);
  X509_gmtime_adj(X509_getm_notBefore(cert), spec.not_before_offset);
  X509_gmtime_adj(X509_getm_notAfter(cert), spec.not_before_offset + spec.lifetime);
  X509_set_pubkey(cert, out.key.get());

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, self_signed ? cert : ca.cert.get(), cert, nullptr, nullptr, 0);
  auto add = [&](const char* name, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf(nullptr, &ctx, name, value);
    check(ext != nullptr, name);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  };
  if (spec.ca) add("basicConstraints", "critical,CA:TRUE");
  if (spec.ski) add("subjectKeyIdentifier", "hash");
  for (const auto& [name, value] : spec.extensions) add(name.c_str(), value.c_str());

  GENERAL_NAMES* sans = sk_GENERAL_NAME_new_null();
  if (!spec.upn.empty())
    sk_GENERAL_NAME_push(sans, other_name("1.3.6.1.4.1.311.20.2.3", string_value(V_ASN1_UTF8STRING, spec.upn)));
  if (!spec.email.empty()) sk_GENERAL_NAME_push(sans, ia5_name(GEN_EMAIL, spec.email));
  for (const auto& uri : spec.uris) sk_GENERAL_NAME_push(sans, ia5_name(GEN_URI, uri));
  if (sk_GENERAL_NAME_num(sans) > 0) X509_add1_ext_i2d(cert, NID_subject_alt_name, sans, 0, X509V3_ADD_DEFAULT);
  GENERAL_NAMES_free(sans);

  if (spec.sid_extension) {
    auto der = sid_extension_der(*spec.sid_extension);
    ASN1_OCTET_STRING* data = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(data, der.data(), static_cast<int>(der.size()));
    ASN1_OBJECT* oid = OBJ_txt2obj("1.3.6.1.4.1.311.25.2", 1);
    X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, oid, 0, data);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(data);
  }
  check(X509_sign(cert, self_signed ? out.key.get() : ca.key.get(), EVP_sha256()) > 0, "sign");
  return out;
}

}  // namespace easedge::testing
