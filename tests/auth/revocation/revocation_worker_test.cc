// The checker's moving parts: file reloads, CDP downloads, OCSP, the disk cache.
#include "auth/revocation/revocation_checker.h"

#include "tests/auth/revocation/test_pki.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <thread>

namespace easedge::auth {
namespace {

using namespace std::chrono_literals;
using testing::CrlSpec;
using testing::HttpAnswer;
using testing::Revocation;
using testing::TempDir;
using testing::TestCa;
using testing::TestHttpServer;

constexpr int key_compromise = 1;

RevocationAnswer wait_for(RevocationChecker& checker, X509* leaf, X509* issuer) {
  std::promise<RevocationAnswer> promise;
  auto future = promise.get_future();
  checker.async_check(leaf, issuer, [&promise](RevocationAnswer a) { promise.set_value(std::move(a)); });
  return future.get();
}

// What a CDP / OCSP endpoint serves; changed by tests while the checker runs.
struct Published {
  std::mutex mutex;
  std::string crl;
  std::string delta;
  int crl_status = 200;
  std::vector<Revocation> ocsp_revoked;
  bool ocsp_garbage = false;
};

class RevocationWorkerTest : public ::testing::Test {
protected:
  RevocationWorkerTest()
      : root_("Worker Root"),
        issuing_("Worker Issuing", &root_),
        server_([this](const std::string& method, const std::string& target, const std::string& body) {
          std::lock_guard lock(published_.mutex);
          if (target == "/issuing.crl") return HttpAnswer{published_.crl_status, published_.crl};
          if (target == "/delta.crl") return HttpAnswer{200, published_.delta};
          if (target == "/ocsp" && method == "POST") {
            if (published_.ocsp_garbage) return HttpAnswer{200, "garbage"};
            return HttpAnswer{200, issuing_.ocsp_response(body, published_.ocsp_revoked)};
          }
          return HttpAnswer{404, {}};
        }) {
    tls_.client_ca = dir_.write("ca-bundle.pem", issuing_.cert_pem() + root_.cert_pem());
    publish_crl({});
  }

  void publish_crl(const CrlSpec& spec) {
    std::lock_guard lock(published_.mutex);
    published_.crl = issuing_.crl_der(spec);
  }

  TempDir dir_;
  TestCa root_;
  TestCa issuing_;
  Published published_;
  TestHttpServer server_;
  config::TlsConfig tls_;
};

TEST_F(RevocationWorkerTest, ReloadReplacesTheCrlFileAndBumpsGeneration) {
  tls_.crl = {dir_.write("issuing.crl", issuing_.crl_pem({.number = 1}))};
  auto checker = RevocationChecker::create(tls_);
  auto leaf = issuing_.issue_leaf(0x42, "leaf");
  ASSERT_EQ(checker->check(leaf.get(), issuing_.cert()).status, RevocationStatus::good);
  const auto before = checker->generation();

  // Replaced the way publishing scripts do it: a new file renamed over the old one.
  auto fresh = dir_.write("issuing.crl.new", issuing_.crl_pem({.revoked = {{0x42, key_compromise}}, .number = 2}));
  std::filesystem::rename(fresh, tls_.crl[0]);
  checker->reload().get();
  EXPECT_EQ(checker->check(leaf.get(), issuing_.cert()).status, RevocationStatus::revoked);
  EXPECT_GT(checker->generation(), before);
  EXPECT_EQ(checker->stats().crl_loads, 2u);
}

TEST_F(RevocationWorkerTest, ChangedFileIsPickedUpWithinTheRefreshInterval) {
  tls_.crl = {dir_.write("issuing.crl", issuing_.crl_pem({.number = 1}))};
  tls_.revocation.refresh = 1s;
  auto checker = RevocationChecker::create(tls_);
  auto leaf = issuing_.issue_leaf(0x43, "leaf");
  const auto before = checker->generation();
  dir_.write("issuing.crl", issuing_.crl_pem({.revoked = {{0x43}}, .number = 2}));
  // Polled, not signalled: wait for the worker's next round (bounded, the assertion is on the result).
  for (int i = 0; i < 100 && checker->generation() == before; ++i) std::this_thread::sleep_for(100ms);
  EXPECT_EQ(checker->check(leaf.get(), issuing_.cert()).status, RevocationStatus::revoked);
}

TEST_F(RevocationWorkerTest, GarbageFileNeverReplacesTheLastGoodCrl) {
  tls_.crl = {dir_.write("issuing.crl", issuing_.crl_pem({.revoked = {{0x44}}}))};
  auto checker = RevocationChecker::create(tls_);
  auto revoked = issuing_.issue_leaf(0x44, "revoked");
  const auto before = checker->generation();

  TestCa rogue("Worker Issuing");  // same name, other key: a forged CRL that "un-revokes" everyone
  for (const auto& bad : {std::string("garbage"), std::string(), rogue.crl_pem({})}) {
    dir_.write("issuing.crl", bad);
    checker->reload().get();
    EXPECT_EQ(checker->check(revoked.get(), issuing_.cert()).status, RevocationStatus::revoked);
  }
  std::filesystem::remove(tls_.crl[0]);
  checker->reload().get();
  EXPECT_EQ(checker->check(revoked.get(), issuing_.cert()).status, RevocationStatus::revoked);
  EXPECT_EQ(checker->generation(), before);
  EXPECT_EQ(checker->stats().crl_load_failures, 4u);
}

TEST_F(RevocationWorkerTest, CdpIsFetchedOnFirstUseAndRefreshedOnReload) {
  tls_.revocation.fetch_cdp = true;
  tls_.revocation.cache_dir = dir_.path() / "cache";
  auto checker = RevocationChecker::create(tls_);
  auto leaf = issuing_.issue_leaf(0x50, "leaf", server_.url("/issuing.crl"));
  EXPECT_EQ(checker->check(leaf.get(), issuing_.cert()).status, RevocationStatus::unavailable);
  EXPECT_EQ(wait_for(*checker, leaf.get(), issuing_.cert()).status, RevocationStatus::good);
  ASSERT_EQ(checker->loaded().size(), 1u);
  EXPECT_EQ(checker->loaded()[0].source, server_.url("/issuing.crl"));

  publish_crl({.revoked = {{0x50, key_compromise}}, .number = 2});
  checker->reload().get();
  EXPECT_EQ(checker->check(leaf.get(), issuing_.cert()).status, RevocationStatus::revoked);
  EXPECT_EQ(checker->stats().crl_fetches, 2u);

  // A restart with the CDP gone still has the last downloaded CRL from cache_dir.
  publish_crl({});
  {
    std::lock_guard lock(published_.mutex);
    published_.crl_status = 503;
  }
  auto restarted = RevocationChecker::create(tls_);
  EXPECT_EQ(restarted->check(leaf.get(), issuing_.cert()).status, RevocationStatus::revoked);
}

TEST_F(RevocationWorkerTest, DeltaCrlNamedByTheBaseIsFetchedAndApplied) {
  tls_.revocation.fetch_cdp = true;
  publish_crl({.revoked = {{0x70}}, .number = 40, .freshest_crl_url = server_.url("/delta.crl")});
  {
    std::lock_guard lock(published_.mutex);
    published_.delta = issuing_.crl_der({.revoked = {{0x71, key_compromise}}, .number = 41, .delta_base = 40});
  }
  auto checker = RevocationChecker::create(tls_);
  auto in_base = issuing_.issue_leaf(0x70, "base", server_.url("/issuing.crl"));
  auto in_delta = issuing_.issue_leaf(0x71, "delta", server_.url("/issuing.crl"));
  EXPECT_EQ(wait_for(*checker, in_base.get(), issuing_.cert()).status, RevocationStatus::revoked);
  // The delta arrives right after its base; wait for it (bounded), then it decides.
  for (int i = 0; i < 100 && checker->loaded().size() < 2; ++i) std::this_thread::sleep_for(50ms);
  ASSERT_EQ(checker->loaded().size(), 2u);
  EXPECT_TRUE(checker->loaded()[1].delta);
  EXPECT_EQ(checker->check(in_delta.get(), issuing_.cert()).status, RevocationStatus::revoked);
}

TEST_F(RevocationWorkerTest, CdpDownOrOversizedIsUnavailableWithTheReason) {
  tls_.revocation.fetch_cdp = true;
  tls_.revocation.max_crl_bytes = 1024;
  publish_crl({.revoked = std::vector<Revocation>(60, Revocation{7})});
  auto checker = RevocationChecker::create(tls_);
  auto big = issuing_.issue_leaf(0x51, "big", server_.url("/issuing.crl"));
  auto answer = wait_for(*checker, big.get(), issuing_.cert());
  EXPECT_EQ(answer.status, RevocationStatus::unavailable);
  EXPECT_NE(answer.reason.find("larger than 1024 bytes"), std::string::npos) << answer.reason;
  EXPECT_FALSE(answer.admits());

  auto down = issuing_.issue_leaf(0x52, "down", "http://127.0.0.1:1/issuing.crl");
  answer = wait_for(*checker, down.get(), issuing_.cert());
  EXPECT_EQ(answer.status, RevocationStatus::unavailable);
  EXPECT_NE(answer.reason.find("connect"), std::string::npos) << answer.reason;
  EXPECT_EQ(checker->stats().crl_fetch_failures, 2u);

  tls_.revocation.on_unavailable = config::RevocationFallback::allow;
  auto lenient = RevocationChecker::create(tls_);
  EXPECT_TRUE(wait_for(*lenient, down.get(), issuing_.cert()).admits());
}

TEST_F(RevocationWorkerTest, ForgedCdpAnswerIsRefused) {
  tls_.revocation.fetch_cdp = true;
  TestCa rogue("Worker Issuing");
  {
    std::lock_guard lock(published_.mutex);
    published_.crl = rogue.crl_der({});
  }
  auto checker = RevocationChecker::create(tls_);
  auto leaf = issuing_.issue_leaf(0x53, "leaf", server_.url("/issuing.crl"));
  auto answer = wait_for(*checker, leaf.get(), issuing_.cert());
  EXPECT_EQ(answer.status, RevocationStatus::unavailable);
  EXPECT_NE(answer.reason.find("signature does not verify"), std::string::npos) << answer.reason;
}

TEST_F(RevocationWorkerTest, OcspAnswersAreVerifiedAndCached) {
  tls_.revocation.ocsp = true;
  auto checker = RevocationChecker::create(tls_);
  auto good = issuing_.issue_leaf(0x60, "good", {}, server_.url("/ocsp"));
  auto revoked = issuing_.issue_leaf(0x61, "revoked", {}, server_.url("/ocsp"));
  {
    std::lock_guard lock(published_.mutex);
    published_.ocsp_revoked = {{0x61, key_compromise}};
  }
  EXPECT_EQ(wait_for(*checker, good.get(), issuing_.cert()).status, RevocationStatus::good);
  auto answer = wait_for(*checker, revoked.get(), issuing_.cert());
  EXPECT_EQ(answer.status, RevocationStatus::revoked);
  EXPECT_NE(answer.reason.find("keyCompromise"), std::string::npos) << answer.reason;
  const int asked = server_.requests();

  // Now cached: answered synchronously, no new request.
  EXPECT_EQ(checker->check(good.get(), issuing_.cert()).status, RevocationStatus::good);
  EXPECT_EQ(wait_for(*checker, revoked.get(), issuing_.cert()).status, RevocationStatus::revoked);
  EXPECT_EQ(server_.requests(), asked);
  EXPECT_GE(checker->stats().ocsp_cache_hits, 2u);
  EXPECT_EQ(checker->stats().ocsp_requests, 2u);
}

TEST_F(RevocationWorkerTest, OcspFailuresAreUnavailable) {
  tls_.revocation.ocsp = true;
  auto checker = RevocationChecker::create(tls_);
  auto down = issuing_.issue_leaf(0x62, "down", {}, "http://127.0.0.1:1/ocsp");
  auto answer = wait_for(*checker, down.get(), issuing_.cert());
  EXPECT_EQ(answer.status, RevocationStatus::unavailable);
  EXPECT_NE(answer.reason.find("OCSP responder http://127.0.0.1:1/ocsp"), std::string::npos) << answer.reason;

  {
    std::lock_guard lock(published_.mutex);
    published_.ocsp_garbage = true;
  }
  auto garbage = issuing_.issue_leaf(0x63, "garbage", {}, server_.url("/ocsp"));
  answer = wait_for(*checker, garbage.get(), issuing_.cert());
  EXPECT_EQ(answer.status, RevocationStatus::unavailable);
  EXPECT_NE(answer.reason.find("not an OCSP response"), std::string::npos) << answer.reason;
  EXPECT_EQ(checker->stats().ocsp_failures, 2u);
}

TEST_F(RevocationWorkerTest, OcspFromAnotherCaIsRejected) {
  tls_.revocation.ocsp = true;
  TestCa rogue("Rogue Responder");
  TestHttpServer rogue_server([&](const std::string&, const std::string&, const std::string& body) {
    return HttpAnswer{200, rogue.ocsp_response(body, {})};
  });
  auto checker = RevocationChecker::create(tls_);
  auto leaf = issuing_.issue_leaf(0x64, "leaf", {}, rogue_server.url("/ocsp"));
  auto answer = wait_for(*checker, leaf.get(), issuing_.cert());
  EXPECT_EQ(answer.status, RevocationStatus::unavailable);
  EXPECT_NE(answer.reason.find("not trusted"), std::string::npos) << answer.reason;
}

TEST_F(RevocationWorkerTest, OcspDownFallsBackToTheCdp) {
  tls_.revocation.ocsp = true;
  tls_.revocation.fetch_cdp = true;
  publish_crl({.revoked = {{0x65}}});
  auto checker = RevocationChecker::create(tls_);
  auto leaf = issuing_.issue_leaf(0x65, "leaf", server_.url("/issuing.crl"), "http://127.0.0.1:1/ocsp");
  EXPECT_EQ(wait_for(*checker, leaf.get(), issuing_.cert()).status, RevocationStatus::revoked);
}

}  // namespace
}  // namespace easedge::auth
