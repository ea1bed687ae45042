// Revocation data for the tests: CAs that issue device certificates, CRLs and OCSP answers, and a CDP/OCSP server.
#pragma once

#include "auth/revocation/crl.h"
#include "tests/support/test_pki.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace easedge::auth::testing {

using easedge::testing::TempDir;

struct Revocation {
  long serial;
  int reason = -1;  // CRLReason, -1 = none
};

struct CrlSpec {
  std::chrono::seconds this_update_offset{-3600};              // relative to now
  std::optional<std::chrono::seconds> next_update_offset{std::chrono::hours(24)};
  std::vector<Revocation> revoked;
  std::optional<long> number;
  std::optional<long> delta_base;  // makes it a delta CRL
  std::string freshest_crl_url;  // Freshest CRL extension: where the delta CRLs are; empty = none
  std::string issuing_distribution_point;  // OpenSSL config text, e.g. "critical,onlyCA:TRUE"; empty = none
};

class TestCa {
public:
  // A self-signed CA (or one signed by `parent`) with an EC P-256 key.
  explicit TestCa(const std::string& common_name, const TestCa* parent = nullptr, bool crl_sign = true);

  // A device certificate; `crl_url` / `ocsp_url` add CRL Distribution Points / AIA OCSP when not empty.
  SharedX509 issue_leaf(long serial, const std::string& common_name, const std::string& crl_url = {},
                       const std::string& ocsp_url = {}) const;
  // The same with its key, for a test that presents it (an operator's certificate, say).
  easedge::testing::Issued issue_leaf_with_key(long serial, const std::string& common_name,
                                               const std::string& crl_url = {}, const std::string& ocsp_url = {}) const;
  // An OCSP response to the DER `request` (echoing its nonce) signed by this CA: revoked when the serial is
  // in `revoked`, else good; nextUpdate `next_update` from now.
  std::string ocsp_response(std::string_view request, const std::vector<Revocation>& revoked,
                            std::chrono::seconds next_update = std::chrono::hours(1)) const;
  std::string crl_pem(const CrlSpec& spec) const;
  std::string crl_der(const CrlSpec& spec) const;
  std::string cert_pem() const;
  X509* cert() const { return self_.cert.get(); }

private:
  OwnedCrl make_crl(const CrlSpec& spec) const;

  easedge::testing::Issued self_;
};

// A plain-HTTP server on 127.0.0.1:<ephemeral> answering from a handler, for CDP and OCSP tests.
struct HttpAnswer {
  int status = 200;
  std::string body;
};
class TestHttpServer {
public:
  using Handler = std::function<HttpAnswer(const std::string& method, const std::string& target, const std::string& body)>;
  explicit TestHttpServer(Handler handler);
  ~TestHttpServer();
  std::string url(const std::string& path) const;  // "http://127.0.0.1:PORT/path"
  int requests() const { return requests_.load(); }

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<int> requests_{0};
};

}  // namespace easedge::auth::testing
