// altSecurityIdentities strings, DN text, serial byte order, UPN/e-mail and SID extraction, against
// certificates generated here.
#include "mapping/certificate_bindings.h"

#include "tests/support/test_pki.h"

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <gtest/gtest.h>

#include <algorithm>

namespace easedge::mapping {
namespace {

using testing::CertSpec;
using testing::Name;
using auth::SharedX509;

const std::string alice_sid = "S-1-5-21-1004336348-1177238915-682003330-1104";

class CertificateBindingsTest : public ::testing::Test {
protected:
  CertificateBindingsTest()
      : ca_(testing::make_ca(Name{{{"DC", "test"}}, {{"DC", "example"}}, {{"CN", "Test Issuing CA"}}})) {}

  SharedX509 issue(CertSpec spec) {
    if (spec.subject.empty()) spec.subject = Name{{{"CN", "WorkspaceONEUEM.alice"}}};
    return testing::issue(spec, ca_).cert;
  }

  static std::string sha1(X509* cert) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    X509_digest(cert, EVP_sha1(), digest, &length);
    return hex_of(digest, length);
  }

  static std::vector<std::string> values_of(const std::vector<BindingCandidate>& candidates, BindingKind kind) {
    std::vector<std::string> out;
    for (const auto& c : candidates)
      if (c.kind == kind) out.push_back(c.value);
    return out;
  }

  testing::Issued ca_;
};

TEST_F(CertificateBindingsTest, BuildsAllSixWindowsForms) {
  CertSpec spec;
  spec.subject = Name{{{"DC", "test"}}, {{"DC", "example"}}, {{"OU", "Devices"}}, {{"CN", "WorkspaceONEUEM.alice"}}};
  spec.serial = {0x12, 0x34, 0x56};
  spec.email = "alice@corp.example.test";
  auto cert = issue(spec);
  auto b = certificate_bindings(cert.get());
  EXPECT_EQ(b.issuer_serial, "X509:<I>DC=test,DC=example,CN=Test Issuing CA<SR>563412");
  EXPECT_EQ(b.issuer_subject,
            "X509:<I>DC=test,DC=example,CN=Test Issuing CA<S>DC=test,DC=example,OU=Devices,CN=WorkspaceONEUEM.alice");
  EXPECT_EQ(b.subject, "X509:<S>DC=test,DC=example,OU=Devices,CN=WorkspaceONEUEM.alice");
  EXPECT_EQ(b.rfc822, "X509:<RFC822>alice@corp.example.test");
  EXPECT_EQ(b.sha1_pukey, "X509:<SHA1-PUKEY>" + sha1(cert.get()));
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(cert.get());
  ASSERT_NE(ski, nullptr);
  EXPECT_EQ(b.ski, "X509:<SKI>" + hex_of(ASN1_STRING_get0_data(ski), ASN1_STRING_length(ski)));
}

TEST_F(CertificateBindingsTest, OptionalFormsAbsentWhenTheCertificateLacksThem) {
  CertSpec spec;
  spec.subject = Name{};
  spec.upn = "alice@corp.example.test";
  spec.ski = false;
  auto cert = testing::issue(spec, ca_).cert;
  auto b = certificate_bindings(cert.get());
  EXPECT_FALSE(b.ski);
  EXPECT_FALSE(b.subject);
  EXPECT_FALSE(b.issuer_subject);
  EXPECT_FALSE(b.rfc822);
  auto candidates = binding_candidates(cert.get());
  EXPECT_TRUE(values_of(candidates, BindingKind::subject).empty());
  EXPECT_TRUE(values_of(candidates, BindingKind::ski).empty());
}

TEST_F(CertificateBindingsTest, SerialBytesAreReversedKeepingTheSignByte) {
  struct Case {
    std::vector<unsigned char> serial;
    std::string reversed;
  };
  for (const auto& c : std::vector<Case>{
           {{0x00, 0xa1, 0xb2}, "b2a100"},              // high bit set: DER keeps a 00 sign byte, so does Windows
           {{0x01, 0xa2, 0xb3}, "b3a201"},              // odd number of hex digits (0x1a2b3)
           {{0x05}, "05"},                              // one byte
           {{0x00, 0x80}, "8000"},
           {{0x1a, 0x2b, 0x3c, 0x4d, 0x5e}, "5e4d3c2b1a"},
           {{0x7f, 0x00, 0x00, 0x01}, "0100007f"},      // zero bytes inside survive
       }) {
    CertSpec spec;
    spec.serial = c.serial;
    auto b = certificate_bindings(issue(spec).get());
    EXPECT_EQ(b.issuer_serial, "X509:<I>DC=test,DC=example,CN=Test Issuing CA<SR>" + c.reversed);
  }
}

TEST_F(CertificateBindingsTest, SambaSerialOrderIsTolerated) {
  CertSpec spec;
  spec.serial = {0x1a, 0x2b, 0x3c, 0x4d, 0x5e};
  auto cert = issue(spec);
  auto serials = values_of(binding_candidates(cert.get()), BindingKind::issuer_serial);
  ASSERT_EQ(serials.size(), 2u);
  EXPECT_EQ(serials[0], "X509:<I>DC=TEST,DC=EXAMPLE,CN=TEST ISSUING CA<SR>5E4D3C2B1A");  // Windows first
  EXPECT_EQ(serials[1], "X509:<I>DC=TEST,DC=EXAMPLE,CN=TEST ISSUING CA<SR>1A2B3C4D5E");
}

TEST_F(CertificateBindingsTest, SerialWithoutSignByteIsTolerated) {
  CertSpec spec;
  spec.serial = {0x00, 0xa1, 0xb2};
  auto serials = values_of(binding_candidates(issue(spec).get()), BindingKind::issuer_serial);
  const std::string prefix = "X509:<I>DC=TEST,DC=EXAMPLE,CN=TEST ISSUING CA<SR>";
  EXPECT_EQ(serials, (std::vector<std::string>{prefix + "B2A100", prefix + "B2A1", prefix + "00A1B2", prefix + "A1B2"}));
}

TEST_F(CertificateBindingsTest, PalindromeSerialGivesOneCandidate) {
  CertSpec spec;
  spec.serial = {0x42};
  EXPECT_EQ(values_of(binding_candidates(issue(spec).get()), BindingKind::issuer_serial).size(), 1u);
}

TEST_F(CertificateBindingsTest, Sha1PukeyAcceptsThumbprintAndPublicKeyHashes) {
  auto cert = issue({});
  auto values = values_of(binding_candidates(cert.get()), BindingKind::sha1_pukey);
  ASSERT_EQ(values.size(), 3u);
  EXPECT_EQ(values[0], *normalize_alt_security_identity("X509:<SHA1-PUKEY>" + sha1(cert.get())));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  X509_pubkey_digest(cert.get(), EVP_sha1(), digest, &length);
  EXPECT_EQ(values[1], *normalize_alt_security_identity("X509:<SHA1-PUKEY>" + hex_of(digest, length)));
}

TEST_F(CertificateBindingsTest, CandidatesAreOrderedStrongFirst) {
  CertSpec spec;
  spec.email = "alice@corp.example.test";
  auto candidates = binding_candidates(issue(spec).get());
  auto first_weak = std::find_if(candidates.begin(), candidates.end(), [](auto& c) { return !is_strong(c.kind); });
  EXPECT_TRUE(std::none_of(first_weak, candidates.end(), [](auto& c) { return is_strong(c.kind); }));
  EXPECT_EQ(candidates.back().kind, BindingKind::rfc822);
}

TEST_F(CertificateBindingsTest, DnQuotesCommasAndSpecialCharactersLikeCertNameToStr) {
  CertSpec spec;
  spec.subject = Name{{{"C", "US"}}, {{"O", "Contoso, Inc."}}, {{"OU", "R&D \"Labs\""}}, {{"CN", "a=b;c<d>#e+f"}}};
  auto b = certificate_bindings(issue(spec).get());
  EXPECT_EQ(b.subject, R"(X509:<S>C=US,O="Contoso, Inc.",OU="R&D ""Labs""",CN="a=b;c<d>#e+f")");
}

TEST_F(CertificateBindingsTest, DnQuotesLeadingAndTrailingSpaces) {
  CertSpec spec;
  spec.subject = Name{{{"CN", " padded "}}};
  EXPECT_EQ(certificate_bindings(issue(spec).get()).subject, "X509:<S>CN=\" padded \"");
}

TEST_F(CertificateBindingsTest, MultiValuedRdnJoinsWithPlus) {
  CertSpec spec;
  spec.subject = Name{{{"O", "Corp"}}, {{"OU", "Phones"}, {"CN", "WorkspaceONEUEM.alice"}}};
  auto cert = issue(spec);
  auto subject = certificate_bindings(cert.get()).subject;
  // OpenSSL keeps a multi-valued RDN in the order DER sorts the SET: both orders are the same RDN.
  EXPECT_TRUE(subject == "X509:<S>O=Corp,OU=Phones+CN=WorkspaceONEUEM.alice" ||
              subject == "X509:<S>O=Corp,CN=WorkspaceONEUEM.alice+OU=Phones")
      << *subject;
}

TEST_F(CertificateBindingsTest, DnUsesAdNamesAndOidForUnknownTypes) {
  CertSpec spec;
  spec.subject = Name{{{"C", "DE"}}, {{"ST", "Bayern"}}, {{"L", "München"}}, {{"emailAddress", "a@b.test"}},
                      {{"UID", "42"}}, {{"serialNumber", "7"}}, {{"title", "Eng"}}};
  EXPECT_EQ(certificate_bindings(issue(spec).get()).subject,
            "X509:<S>C=DE,S=Bayern,L=München,E=a@b.test,OID.0.9.2342.19200300.100.1.1=42,SERIALNUMBER=7,T=Eng");
}

TEST_F(CertificateBindingsTest, DnConvertsBmpStringToUtf8) {
  X509_NAME* name = X509_NAME_new();
  // "Jürgen" as UTF-16BE: what older CAs write into a BMPString.
  const unsigned char bmp[] = {0, 'J', 0, 0xfc, 0, 'r', 0, 'g', 0, 'e', 0, 'n'};
  X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_BMPSTRING, bmp, sizeof bmp, -1, 0);
  EXPECT_EQ(ad_dn(name), "CN=Jürgen");
  X509_NAME_free(name);
}

TEST_F(CertificateBindingsTest, NormalizationIsCaseInsensitiveAndToleratesSpaceAfterPrefix) {
  EXPECT_EQ(normalize_alt_security_identity("x509: <RFC822>Alice@Corp.Example.Test"),
            "X509:<RFC822>ALICE@CORP.EXAMPLE.TEST");
  EXPECT_EQ(normalize_alt_security_identity("X509:<I>dc=test<SR>0a"), normalize_alt_security_identity("X509:<I>DC=TEST<SR>0A"));
  EXPECT_EQ(normalize_alt_security_identity("X509:<S>CN=Jürgen"), "X509:<S>CN=JüRGEN");  // only ASCII folds
  for (const char* bad : {"", "X509", "X509:", "X509:<>", "X509:<FOO>bar", "Kerberos:alice@CORP", "X509:<S>",
                          "X509:RFC822>a@b", " X509:<S>CN=a"}) {
    EXPECT_FALSE(normalize_alt_security_identity(bad)) << bad;
  }
}

TEST_F(CertificateBindingsTest, UpnAndEmailFromSubjectAltName) {
  CertSpec spec;
  spec.upn = "alice@corp.example.test";
  spec.email = "alice.mail@corp.example.test";
  auto cert = issue(spec);
  EXPECT_EQ(upn_of(cert.get()), "alice@corp.example.test");
  EXPECT_EQ(email_of(cert.get()), "alice.mail@corp.example.test");
  auto none = issue({});
  EXPECT_EQ(upn_of(none.get()), "");
  EXPECT_EQ(email_of(none.get()), "");
}

TEST_F(CertificateBindingsTest, UpnWithEmbeddedNulIsIgnored) {
  CertSpec spec;
  spec.upn = std::string("alice@corp.example.test\0.evil.test", 34);
  EXPECT_EQ(upn_of(issue(spec).get()), "");
}

TEST_F(CertificateBindingsTest, SidExtensionHasTheMicrosoftEncoding) {
  auto der = testing::sid_extension_der(alice_sid);
  const std::vector<unsigned char> prefix{0x30, 0x3F, 0xA0, 0x3D, 0x06, 0x0A, 0x2B, 0x06, 0x01, 0x04,
                                          0x01, 0x82, 0x37, 0x19, 0x02, 0x01, 0xA0, 0x2F, 0x04, 0x2D};
  ASSERT_GT(der.size(), prefix.size());
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), der.begin()));
  EXPECT_EQ(sid_from_extension(der.data(), static_cast<long>(der.size())), alice_sid);
}

TEST_F(CertificateBindingsTest, SidFromExtensionAndSanUri) {
  CertSpec with_extension;
  with_extension.sid_extension = alice_sid;
  auto sid = sid_of(issue(with_extension).get());
  EXPECT_EQ(sid.state, CertificateSid::State::present);
  EXPECT_EQ(sid.sid, alice_sid);

  CertSpec with_uri;
  with_uri.uris = {"https://example.test/", "tag:microsoft.com,2022-09-14:sid:" + alice_sid};
  sid = sid_of(issue(with_uri).get());
  EXPECT_EQ(sid.state, CertificateSid::State::present);
  EXPECT_EQ(sid.sid, alice_sid);

  CertSpec both_agree = with_uri;
  both_agree.sid_extension = alice_sid;
  EXPECT_EQ(sid_of(issue(both_agree).get()).state, CertificateSid::State::present);

  EXPECT_EQ(sid_of(issue({}).get()).state, CertificateSid::State::absent);
}

TEST_F(CertificateBindingsTest, SidConflictsAndMalformedValues) {
  CertSpec conflict;
  conflict.sid_extension = alice_sid;
  conflict.uris = {"tag:microsoft.com,2022-09-14:sid:S-1-5-21-1-2-3-500"};
  EXPECT_EQ(sid_of(issue(conflict).get()).state, CertificateSid::State::conflict);

  CertSpec bad_extension;
  bad_extension.sid_extension = "S-1-5-21-not-a-sid";
  EXPECT_EQ(sid_of(issue(bad_extension).get()).state, CertificateSid::State::malformed);

  CertSpec bad_uri;
  bad_uri.uris = {"tag:microsoft.com,2022-09-14:sid:"};
  EXPECT_EQ(sid_of(issue(bad_uri).get()).state, CertificateSid::State::malformed);
}

TEST_F(CertificateBindingsTest, SidExtensionParserRejectsHostileDer) {
  auto der = testing::sid_extension_der(alice_sid);
  // Every truncation, trailing garbage, and a length byte pointing past the end.
  for (std::size_t n = 0; n < der.size(); ++n) EXPECT_FALSE(sid_from_extension(der.data(), static_cast<long>(n))) << n;
  auto trailing = der;
  trailing.push_back(0x00);
  EXPECT_FALSE(sid_from_extension(trailing.data(), static_cast<long>(trailing.size())));
  auto overlong = der;
  overlong[1] = 0x7f;
  EXPECT_FALSE(sid_from_extension(overlong.data(), static_cast<long>(overlong.size())));
  auto wrong_oid = der;
  wrong_oid[15] = 0x02;  // 1.3.6.1.4.1.311.25.2.2
  EXPECT_FALSE(sid_from_extension(wrong_oid.data(), static_cast<long>(wrong_oid.size())));
  auto not_octets = der;
  not_octets[18] = 0x0c;  // UTF8String instead of OCTET STRING
  EXPECT_FALSE(sid_from_extension(not_octets.data(), static_cast<long>(not_octets.size())));
}

}  // namespace
}  // namespace easedge::mapping
