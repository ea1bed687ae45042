// Delegator behaviour that needs no working KDC: start-up checks, refusals, outage classification,
// one KDC exchange for concurrent requests of one user, every callback called exactly once.
// (Success paths run against a real Samba AD DC in tests/integration/test_kerberos.py.)
#include "auth/kerberos/delegator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <krb5/krb5.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

namespace easedge::auth::kerberos {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// A TCP socket on 127.0.0.1 playing a KDC that accepts connections and never answers, until closed.
class SilentKdc {
public:
  SilentKdc() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd_, 16);
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~SilentKdc() { close(); }
  int port() const { return port_; }
  // Waits for the first client (the delegator's AS request); false on timeout.
  bool wait_for_client() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return false;
    client_ = ::accept(fd_, nullptr, nullptr);
    return client_ >= 0;
  }
  // Drops the client and stops listening: the request fails, retries are refused.
  void close() {
    if (client_ >= 0) ::close(client_);
    if (fd_ >= 0) ::close(fd_);
    client_ = fd_ = -1;
  }

private:
  int fd_ = -1;
  int client_ = -1;
  int port_ = 0;
};

class DelegatorTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("easedge-kerberos-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "krb5.conf") << "[libdefaults]\n default_realm = TEST.REALM\n dns_lookup_kdc = false\n"
                                      << " udp_preference_limit = 1\n[realms]\n TEST.REALM = {\n  kdc = 127.0.0.1:"
                                      << kdc_.port() << "\n }\n";
    ::setenv("KRB5_CONFIG", (dir_ / "krb5.conf").c_str(), 1);
    write_keytab(dir_ / "easproxy.keytab", "easproxy@TEST.REALM");
    config_.keytab = dir_ / "easproxy.keytab";
    config_.principal = "easproxy@TEST.REALM";
    config_.service = "HTTP/exchange.test.realm";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A keytab holding one random AES key for PRINCIPAL.
  static void write_keytab(const fs::path& file, const std::string& principal) {
    krb5_context context;
    ASSERT_EQ(krb5_init_context(&context), 0);
    krb5_keytab keytab;
    krb5_principal name;
    ASSERT_EQ(krb5_kt_resolve(context, ("FILE:" + file.string()).c_str(), &keytab), 0);
    ASSERT_EQ(krb5_parse_name(context, principal.c_str(), &name), 0);
    krb5_keytab_entry entry{};
    entry.principal = name;
    entry.vno = 1;
    ASSERT_EQ(krb5_c_make_random_key(context, ENCTYPE_AES256_CTS_HMAC_SHA1_96, &entry.key), 0);
    ASSERT_EQ(krb5_kt_add_entry(context, keytab, &entry), 0);
    krb5_free_keyblock_contents(context, &entry.key);
    krb5_free_principal(context, name);
    krb5_kt_close(context, keytab);
    krb5_free_context(context);
  }

  SilentKdc kdc_;
  fs::path dir_;
  config::KerberosConfig config_;
};

TEST_F(DelegatorTest, RefusesToStartWithoutAKeyForThePrincipal) {
  config_.principal = "someoneelse@TEST.REALM";
  try {
    Delegator delegator(config_);
    FAIL() << "expected a start-up error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("no key for someoneelse@TEST.REALM"));
    EXPECT_THAT(e.what(), HasSubstr("fix: export the keytab again"));
  }
}

TEST_F(DelegatorTest, RefusesToStartWithoutTheKeytabFile) {
  config_.keytab = dir_ / "missing.keytab";
  EXPECT_THROW(Delegator delegator(config_), std::runtime_error);
}

TEST_F(DelegatorTest, RefusesImplausibleUserNamesInlineWithoutTheKdc) {
  Delegator delegator(config_);
  for (const std::string& upn : {std::string(), std::string("alice\n@corp"), std::string(2000, 'a')}) {
    int calls = 0;
    TokenResult result;
    delegator.token_for(upn, [&](TokenResult r) {
      ++calls;
      result = std::move(r);
    });
    EXPECT_EQ(calls, 1) << "called inline, exactly once";
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().kind, FailureKind::user_refused);
  }
  EXPECT_EQ(delegator.stats().kdc_exchanges, 0u);
  EXPECT_EQ(delegator.stats().user_refused, 3u);
}

TEST_F(DelegatorTest, ConcurrentRequestsForOneUserShareOneKdcExchangeAndAllLearnTheKdcIsDown) {
  constexpr int requests = 6;
  auto delegator = std::make_unique<Delegator>(config_);
  std::mutex mutex;
  std::vector<TokenResult> results;
  std::promise<void> all_done;
  auto done = [&](TokenResult r) {
    std::lock_guard lock(mutex);
    results.push_back(std::move(r));
    if (results.size() == requests) all_done.set_value();
  };
  delegator->token_for("alice@test.realm", done);
  ASSERT_TRUE(kdc_.wait_for_client()) << "the first request goes to the KDC";
  // The exchange hangs on the silent KDC: later requests (any spelling of the UPN) join it.
  for (int i = 1; i < requests; ++i) delegator->token_for(i % 2 ? "ALICE@test.realm" : "alice@test.realm", done);
  kdc_.close();
  ASSERT_EQ(all_done.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
  for (const TokenResult& r : results) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, FailureKind::kdc_unavailable);
    EXPECT_THAT(r.error().message, HasSubstr("easproxy@TEST.REALM"));
    EXPECT_THAT(r.error().message, HasSubstr("port 88"));
  }
  DelegatorStats stats = delegator->stats();
  EXPECT_EQ(stats.kdc_exchanges, 1u);
  EXPECT_EQ(stats.kdc_unavailable, static_cast<std::uint64_t>(requests));
  EXPECT_EQ(stats.cached_users, 0u);
  delegator.reset();
  EXPECT_EQ(results.size(), static_cast<std::size_t>(requests)) << "no callback after destruction";
}

TEST_F(DelegatorTest, DestructionWaitsForQueuedExchangesAndCallsEveryCallbackOnce) {
  kdc_.close();  // connection refused: each exchange fails fast
  std::atomic<int> calls{0};
  {
    config_.worker_threads = 1;
    Delegator delegator(config_);
    for (int i = 0; i < 5; ++i) delegator.token_for("user" + std::to_string(i) + "@test.realm", [&](TokenResult r) {
      EXPECT_TRUE(!r && r.error().kind == FailureKind::kdc_unavailable);
      ++calls;
    });
  }
  EXPECT_EQ(calls.load(), 5);
}

}  // namespace
}  // namespace easedge::auth::kerberos
