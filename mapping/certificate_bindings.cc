#include "mapping/certificate_bindings.h"

#include "mapping/sid.h"

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <functional>
#include <memory>

namespace easedge::mapping {
namespace {

constexpr std::string_view sid_uri_prefix = "tag:microsoft.com,2022-09-14:sid:";

const ASN1_OBJECT* oid(const char* dotted) { return OBJ_txt2obj(dotted, 1); }
const ASN1_OBJECT* sid_extension_oid() {
  static const ASN1_OBJECT* object = oid("1.3.6.1.4.1.311.25.2");
  return object;
}
const ASN1_OBJECT* sid_name_oid() {
  static const ASN1_OBJECT* object = oid("1.3.6.1.4.1.311.25.2.1");
  return object;
}

struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* names) const { GENERAL_NAMES_free(names); }
};
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, GeneralNamesFree>;

std::string text_of(const ASN1_STRING* s) {
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s))};
}

// Calls `visit` for each subjectAltName entry until it returns false.
void for_each_san(X509* cert, const std::function<bool(const GENERAL_NAME&)>& visit) {
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i)
    if (!visit(*sk_GENERAL_NAME_value(names.get(), i))) return;
}

// CertNameToStr's X500 keys for the attribute types a certificate name commonly holds.
const char* ad_attribute_name(int nid) {
  switch (nid) {
    case NID_commonName: return "CN";
    case NID_organizationalUnitName: return "OU";
    case NID_organizationName: return "O";
    case NID_localityName: return "L";
    case NID_stateOrProvinceName: return "S";
    case NID_countryName: return "C";
    case NID_domainComponent: return "DC";
    case NID_pkcs9_emailAddress: return "E";
    case NID_streetAddress: return "STREET";
    case NID_title: return "T";
    case NID_givenName: return "G";
    case NID_initials: return "I";
    case NID_surname: return "SN";
    case NID_serialNumber: return "SERIALNUMBER";
    case NID_description: return "Description";
    case NID_postalCode: return "PostalCode";
    case NID_postOfficeBox: return "POBox";
    case NID_telephoneNumber: return "Phone";
    case NID_dnQualifier: return "dnQualifier";
    default: return nullptr;
  }
}

std::string attribute_name(const ASN1_OBJECT* type) {
  if (const char* name = ad_attribute_name(OBJ_obj2nid(type))) return name;
  char dotted[128];
  OBJ_obj2txt(dotted, sizeof dotted, type, 1);
  return std::string("OID.") + dotted;
}

// CertNameToStr (CERT_X500_NAME_STR) quotes a value with leading/trailing spaces or any of , + = " \r \n < > # ;
std::string quoted_if_needed(const std::string& value) {
  bool quote = !value.empty() && (value.front() == ' ' || value.back() == ' ');
  quote = quote || value.find_first_of(",+=\"\r\n<>#;") != std::string::npos;
  if (!quote) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

std::string value_text(const X509_NAME_ENTRY* entry) {
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(entry);
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length >= 0) {
    std::string value(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(length));
    OPENSSL_free(utf8);
    return quoted_if_needed(value);
  }
  // Not a string type: the hex of its content, as RFC 4514 does for values it cannot print.
  return "#" + hex_of(ASN1_STRING_get0_data(data), static_cast<std::size_t>(ASN1_STRING_length(data)));
}

// The content octets of the DER serialNumber INTEGER (with the 00 sign byte when the high bit is set):
// what Windows keeps, little-endian, in CERT_INFO.SerialNumber.
std::vector<unsigned char> serial_bytes(X509* cert) {
  unsigned char* der = nullptr;
  int der_length = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &der);
  if (der_length <= 0) return {};
  const unsigned char* content = der;
  long content_length = 0;
  int tag = 0;
  int klass = 0;
  std::vector<unsigned char> bytes;
  if (!(ASN1_get_object(&content, &content_length, &tag, &klass, der_length) & 0x80))
    bytes.assign(content, content + content_length);
  OPENSSL_free(der);
  return bytes;
}

std::string upper_ascii(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : static_cast<char>(c); });
  return text;
}

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && upper_ascii(std::string(text.substr(0, prefix.size()))) ==
                                             upper_ascii(std::string(prefix));
}

std::string sha1_hex(const unsigned char* data, std::size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data, size, digest, &length, EVP_sha1(), nullptr);
  return hex_of(digest, length);
}

std::string thumbprint_hex(X509* cert) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  X509_digest(cert, EVP_sha1(), digest, &length);
  return hex_of(digest, length);
}

std::optional<std::string> subject_dn(X509* cert) {
  const X509_NAME* subject = X509_get_subject_name(cert);
  if (X509_NAME_entry_count(subject) == 0) return std::nullopt;
  return ad_dn(subject);
}

}  // namespace

const char* method_name(BindingKind kind) {
  switch (kind) {
    case BindingKind::issuer_serial: return "altsec:issuer-serial";
    case BindingKind::ski: return "altsec:ski";
    case BindingKind::sha1_pukey: return "altsec:sha1-pukey";
    case BindingKind::issuer_subject: return "altsec:issuer-subject";
    case BindingKind::subject: return "altsec:subject";
    case BindingKind::rfc822: return "altsec:rfc822";
  }
  return "altsec";
}

bool is_strong(BindingKind kind) {
  return kind == BindingKind::issuer_serial || kind == BindingKind::ski || kind == BindingKind::sha1_pukey;
}

std::string hex_of(const unsigned char* data, std::size_t size) {
  if (size == 0) return {};
  std::string hex(2 * size + 1, '\0');
  std::size_t written = 0;
  OPENSSL_buf2hexstr_ex(hex.data(), hex.size(), &written, data, size, '\0');
  hex.resize(written > 0 ? written - 1 : 0);  // written counts the terminating NUL
  std::transform(hex.begin(), hex.end(), hex.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return hex;
}

std::string ad_dn(const X509_NAME* name) {
  std::string dn;
  int previous_set = -1;
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    int set = X509_NAME_ENTRY_set(entry);
    if (i > 0) dn += set == previous_set ? '+' : ',';
    previous_set = set;
    dn += attribute_name(X509_NAME_ENTRY_get_object(entry));
    dn += '=';
    dn += value_text(entry);
  }
  return dn;
}

CertificateBindings certificate_bindings(X509* cert) {
  CertificateBindings b;
  std::string issuer = ad_dn(X509_get_issuer_name(cert));
  auto serial = serial_bytes(cert);
  std::reverse(serial.begin(), serial.end());
  b.issuer_serial = "X509:<I>" + issuer + "<SR>" + hex_of(serial.data(), serial.size());
  if (const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(cert))
    b.ski = "X509:<SKI>" + hex_of(ASN1_STRING_get0_data(ski), static_cast<std::size_t>(ASN1_STRING_length(ski)));
  b.sha1_pukey = "X509:<SHA1-PUKEY>" + thumbprint_hex(cert);
  if (auto subject = subject_dn(cert)) {
    b.issuer_subject = "X509:<I>" + issuer + "<S>" + *subject;
    b.subject = "X509:<S>" + *subject;
  }
  if (auto email = email_of(cert); !email.empty()) b.rfc822 = "X509:<RFC822>" + email;
  return b;
}

std::vector<BindingCandidate> binding_candidates(X509* cert) {
  CertificateBindings b = certificate_bindings(cert);
  std::vector<BindingCandidate> out;
  auto add = [&out](BindingKind kind, const std::string& value) {
    if (auto normalized = normalize_alt_security_identity(value)) {
      bool seen = std::any_of(out.begin(), out.end(), [&](const BindingCandidate& c) { return c.value == *normalized; });
      if (!seen) out.push_back({kind, *normalized});
    }
  };
  // Windows form first; then the same serial without the DER sign byte (tools that print the magnitude),
  // then both in certificate byte order (Samba's KDC reads the serial unreversed).
  const std::string issuer_prefix = "X509:<I>" + ad_dn(X509_get_issuer_name(cert)) + "<SR>";
  auto serial = serial_bytes(cert);
  std::vector<std::vector<unsigned char>> serials{serial};
  if (serial.size() > 1 && serial.front() == 0x00) serials.emplace_back(serial.begin() + 1, serial.end());
  for (bool windows_order : {true, false}) {
    for (auto bytes : serials) {
      if (windows_order) std::reverse(bytes.begin(), bytes.end());
      add(BindingKind::issuer_serial, issuer_prefix + hex_of(bytes.data(), bytes.size()));
    }
  }
  if (b.ski) add(BindingKind::ski, *b.ski);
  add(BindingKind::sha1_pukey, b.sha1_pukey);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_pubkey_digest(cert, EVP_sha1(), digest, &length) == 1)
    add(BindingKind::sha1_pukey, "X509:<SHA1-PUKEY>" + hex_of(digest, length));
  unsigned char* spki = nullptr;
  int spki_length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &spki);
  if (spki_length > 0) {
    add(BindingKind::sha1_pukey, "X509:<SHA1-PUKEY>" + sha1_hex(spki, static_cast<std::size_t>(spki_length)));
    OPENSSL_free(spki);
  }
  if (b.issuer_subject) add(BindingKind::issuer_subject, *b.issuer_subject);
  if (b.subject) add(BindingKind::subject, *b.subject);
  if (b.rfc822) add(BindingKind::rfc822, *b.rfc822);
  return out;
}

std::optional<std::string> normalize_alt_security_identity(std::string_view stored) {
  constexpr std::string_view prefix = "X509:";
  if (!starts_with_ignoring_case(stored, prefix)) return std::nullopt;
  std::string_view rest = stored.substr(prefix.size());
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  std::string value = upper_ascii(std::string(rest));
  constexpr std::array<std::string_view, 5> first_tags{"<I>", "<S>", "<SKI>", "<SHA1-PUKEY>", "<RFC822>"};
  bool known = std::any_of(first_tags.begin(), first_tags.end(),
                           [&](std::string_view tag) { return value.starts_with(tag) && value.size() > tag.size(); });
  if (!known) return std::nullopt;
  return std::string(prefix) + value;
}

std::string email_of(X509* cert) {
  std::string email;
  for_each_san(cert, [&email](const GENERAL_NAME& name) {
    if (name.type != GEN_EMAIL) return true;
    std::string text = text_of(name.d.rfc822Name);
    if (text.empty() || text.find('\0') != std::string::npos) return true;
    email = std::move(text);
    return false;
  });
  return email;
}

std::optional<std::string> sid_from_extension(const unsigned char* der, long length) {
  const unsigned char* p = der;
  GeneralNamesPtr names(d2i_GENERAL_NAMES(nullptr, &p, length));
  if (!names || p != der + length) return std::nullopt;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_OTHERNAME || OBJ_cmp(name->d.otherName->type_id, sid_name_oid()) != 0) continue;
    const ASN1_TYPE* value = name->d.otherName->value;
    if (value == nullptr || value->type != V_ASN1_OCTET_STRING) return std::nullopt;
    return canonical_sid(text_of(value->value.octet_string));
  }
  return std::nullopt;
}

CertificateSid sid_of(X509* cert) {
  CertificateSid result;
  auto merge = [&result](std::optional<std::string> sid) {
    using State = CertificateSid::State;
    if (!sid) {
      if (result.state != State::conflict) result.state = State::malformed;
    } else if (result.state == State::absent) {
      result = {State::present, *sid};
    } else if (result.state == State::present && result.sid != *sid) {
      result.state = State::conflict;
    }
  };
  int index = X509_get_ext_by_OBJ(cert, sid_extension_oid(), -1);
  if (index >= 0) {
    const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(X509_get_ext(cert, index));
    merge(sid_from_extension(ASN1_STRING_get0_data(data), ASN1_STRING_length(data)));
  }
  for_each_san(cert, [&merge](const GENERAL_NAME& name) {
    if (name.type != GEN_URI) return true;
    std::string uri = text_of(name.d.uniformResourceIdentifier);
    if (starts_with_ignoring_case(uri, sid_uri_prefix)) merge(canonical_sid(std::string_view(uri).substr(sid_uri_prefix.size())));
    return true;
  });
  return result;
}

}  // namespace easedge::mapping
