// In-memory certificates and CRLs built with the OpenSSL API, so tests control every date and field.
#include "tests/auth/revocation/test_pki.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdexcept>
#include <thread>

namespace easedge::auth::testing {
namespace {

void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what + " failed");
}

// What every certificate of these tests shares: a CN, a year of validity from yesterday, no SKI.
easedge::testing::CertSpec spec_for(long serial, const std::string& common_name) {
  easedge::testing::CertSpec spec;
  spec.subject = easedge::testing::common_name(common_name);
  spec.serial = easedge::testing::serial_content(serial);
  spec.ski = false;
  spec.not_before_offset = -86400;
  spec.lifetime = 86400L * 366;
  return spec;
}

void add_crl_integer(X509_CRL* crl, int nid, long value) {
  ASN1_INTEGER* number = ASN1_INTEGER_new();
  ASN1_INTEGER_set(number, value);
  X509_CRL_add1_ext_i2d(crl, nid, number, nid == NID_delta_crl ? 1 : 0, X509V3_ADD_DEFAULT);
  ASN1_INTEGER_free(number);
}

}  // namespace

TestCa::TestCa(const std::string& common_name, const TestCa* parent, bool crl_sign) {
  static long next_serial = 1000;
  auto spec = spec_for(next_serial++, common_name);
  spec.ca = true;
  spec.extensions = {{"keyUsage", crl_sign ? "critical,keyCertSign,cRLSign" : "critical,keyCertSign"}};
  self_ = easedge::testing::issue(spec, parent ? parent->self_ : easedge::testing::Issued{});
}

SharedX509 TestCa::issue_leaf(long serial, const std::string& common_name, const std::string& crl_url,
                              const std::string& ocsp_url) const {
  return issue_leaf_with_key(serial, common_name, crl_url, ocsp_url).cert;
}

easedge::testing::Issued TestCa::issue_leaf_with_key(long serial, const std::string& common_name,
                                                     const std::string& crl_url, const std::string& ocsp_url) const {
  auto spec = spec_for(serial, common_name);
  spec.extensions = {{"extendedKeyUsage", "clientAuth"}};
  if (!crl_url.empty()) spec.extensions.emplace_back("crlDistributionPoints", "URI:" + crl_url);
  if (!ocsp_url.empty()) spec.extensions.emplace_back("authorityInfoAccess", "OCSP;URI:" + ocsp_url);
  return easedge::testing::issue(spec, self_);
}

OwnedCrl TestCa::make_crl(const CrlSpec& spec) const {
  OwnedCrl crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(self_.cert.get()));
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  ASN1_TIME* t = ASN1_TIME_adj(nullptr, now, 0, static_cast<long>(spec.this_update_offset.count()));
  X509_CRL_set1_lastUpdate(crl.get(), t);
  if (spec.next_update_offset) {
    ASN1_TIME_adj(t, now, 0, static_cast<long>(spec.next_update_offset->count()));
    X509_CRL_set1_nextUpdate(crl.get(), t);
  }
  for (const auto& r : spec.revoked) {
    X509_REVOKED* entry = X509_REVOKED_new();
    ASN1_INTEGER* serial = ASN1_INTEGER_new();
    ASN1_INTEGER_set(serial, r.serial);
    X509_REVOKED_set_serialNumber(entry, serial);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_adj(t, now, 0, -60);
    X509_REVOKED_set_revocationDate(entry, t);
    if (r.reason >= 0) {
      ASN1_ENUMERATED* reason = ASN1_ENUMERATED_new();
      ASN1_ENUMERATED_set(reason, r.reason);
      X509_REVOKED_add1_ext_i2d(entry, NID_crl_reason, reason, 0, X509V3_ADD_DEFAULT);
      ASN1_ENUMERATED_free(reason);
    }
    X509_CRL_add0_revoked(crl.get(), entry);
  }
  ASN1_TIME_free(t);
  if (spec.number) add_crl_integer(crl.get(), NID_crl_number, *spec.number);
  if (spec.delta_base) add_crl_integer(crl.get(), NID_delta_crl, *spec.delta_base);
  if (!spec.freshest_crl_url.empty()) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_freshest_crl, ("URI:" + spec.freshest_crl_url).c_str());
    require(ext != nullptr, "freshestCRL");
    X509_CRL_add_ext(crl.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (!spec.issuing_distribution_point.empty()) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, self_.cert.get(), nullptr, nullptr, crl.get(), 0);
    X509_EXTENSION* ext =
        X509V3_EXT_conf_nid(nullptr, &ctx, NID_issuing_distribution_point, spec.issuing_distribution_point.c_str());
    require(ext != nullptr, "issuingDistributionPoint");
    X509_CRL_add_ext(crl.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_CRL_sort(crl.get());
  require(X509_CRL_sign(crl.get(), self_.key.get(), EVP_sha256()) > 0, "X509_CRL_sign");
  return crl;
}

std::string TestCa::crl_pem(const CrlSpec& spec) const {
  auto crl = make_crl(spec);
  return easedge::testing::to_pem(crl.get());
}

std::string TestCa::crl_der(const CrlSpec& spec) const {
  auto crl = make_crl(spec);
  unsigned char* der = nullptr;
  int size = i2d_X509_CRL(crl.get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(size));
  OPENSSL_free(der);
  return out;
}

std::string TestCa::cert_pem() const { return easedge::testing::to_pem(self_.cert.get()); }

std::string TestCa::ocsp_response(std::string_view request_der, const std::vector<Revocation>& revoked,
                                  std::chrono::seconds next_update) const {
  auto* p = reinterpret_cast<const unsigned char*>(request_der.data());
  OCSP_REQUEST* request = d2i_OCSP_REQUEST(nullptr, &p, static_cast<long>(request_der.size()));
  require(request != nullptr, "d2i_OCSP_REQUEST");
  OCSP_BASICRESP* basic = OCSP_BASICRESP_new();
  ASN1_TIME* this_update = X509_gmtime_adj(nullptr, -60);
  ASN1_TIME* next = X509_gmtime_adj(nullptr, static_cast<long>(next_update.count()));
  ASN1_TIME* revoked_at = X509_gmtime_adj(nullptr, -120);
  for (int i = 0; i < OCSP_request_onereq_count(request); ++i) {
    OCSP_CERTID* id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(request, i));
    ASN1_INTEGER* serial = nullptr;
    OCSP_id_get0_info(nullptr, nullptr, nullptr, &serial, id);
    const long number = ASN1_INTEGER_get(serial);
    int reason = -1;
    bool is_revoked = false;
    for (const auto& r : revoked)
      if (r.serial == number) is_revoked = true, reason = r.reason;
    OCSP_basic_add1_status(basic, id, is_revoked ? V_OCSP_CERTSTATUS_REVOKED : V_OCSP_CERTSTATUS_GOOD,
                           reason, is_revoked ? revoked_at : nullptr, this_update, next);
  }
  OCSP_copy_nonce(basic, request);
  require(OCSP_basic_sign(basic, self_.cert.get(), self_.key.get(), EVP_sha256(), nullptr, 0) == 1, "OCSP_basic_sign");
  OCSP_RESPONSE* response = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic);
  unsigned char* der = nullptr;
  int size = i2d_OCSP_RESPONSE(response, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(size));
  OPENSSL_free(der);
  OCSP_RESPONSE_free(response);
  OCSP_BASICRESP_free(basic);
  OCSP_REQUEST_free(request);
  ASN1_TIME_free(this_update);
  ASN1_TIME_free(next);
  ASN1_TIME_free(revoked_at);
  return out;
}

// One connection at a time, answered synchronously on the server thread: enough for tests.
struct TestHttpServer::Impl {
  Impl(Handler h, std::atomic<int>& count) : handler(std::move(h)), requests(count) {}

  void accept() {
    namespace http = boost::beast::http;
    acceptor.async_accept([this](boost::system::error_code ec, boost::asio::ip::tcp::socket socket) {
      if (ec) return;
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> request;
      http::read(socket, buffer, request, ec);
      if (!ec) {
        ++requests;
        auto answer = handler(std::string(request.method_string()), std::string(request.target()), request.body());
        http::response<http::string_body> response{static_cast<http::status>(answer.status), 11};
        response.body() = answer.body;
        response.prepare_payload();
        http::write(socket, response, ec);
      }
      socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
      accept();
    });
  }

  Handler handler;
  std::atomic<int>& requests;
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor{io, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  std::thread thread;
};

TestHttpServer::TestHttpServer(Handler handler) : impl_(std::make_unique<Impl>(std::move(handler), requests_)) {
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

TestHttpServer::~TestHttpServer() {
  impl_->io.stop();
  impl_->thread.join();
}

std::string TestHttpServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(impl_->acceptor.local_endpoint().port()) + path;
}

}  // namespace easedge::auth::testing
