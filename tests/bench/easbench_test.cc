// Unit tests for easbench's pieces: option validation, percentiles, request rendering, identity minting.
#include "bench/easbench/identity.h"
#include "bench/easbench/latency.h"
#include "bench/easbench/options.h"
#include "bench/easbench/report.h"
#include "bench/easbench/requests.h"
#include "tests/support/test_pki.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

namespace easedge::bench {
namespace {

namespace fs = std::filesystem;

// A temporary folder with a self-signed device CA (P-256) and an unrelated key, removed at the end.
class TempPki {
 public:
  TempPki() {
    testing::CertSpec spec;
    spec.subject = testing::common_name("Test Device CA");
    spec.serial = testing::serial_content(1);
    spec.ca = true;
    spec.extensions = {{"keyUsage", "critical,keyCertSign,cRLSign"}};
    spec.not_before_offset = -60;
    spec.lifetime = 3600L * 24 * 365 + 60;
    ca_ = testing::issue(spec, testing::Issued{});
    dir_.write("ca.pem", testing::to_pem(ca_.cert.get()));
    dir_.write("ca.key", testing::to_pem(ca_.key.get()));
    dir_.write("other.key", testing::to_pem(testing::make_key().get()));
  }
  fs::path ca_pem() const { return dir_.path() / "ca.pem"; }
  fs::path ca_key() const { return dir_.path() / "ca.key"; }
  fs::path other_key() const { return dir_.path() / "other.key"; }
  fs::path dir() const { return dir_.path(); }
  X509* ca() const { return ca_.cert.get(); }

 private:
  testing::TempDir dir_{"easbench-test"};
  testing::Issued ca_;
};

// Verifies `cert` against `ca` for the clientAuth purpose, as a TLS server would.
bool verifies(X509* cert, X509* ca) {
  auth::OwnedX509Store store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca);
  auth::OwnedX509StoreCtx ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  return X509_verify_cert(ctx.get()) == 1;
}

std::string subject_of(X509* cert) {
  char buf[256];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

// ---- options ----

struct Parsed {
  ParseResult result;
  std::string out, err;
};

Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "easbench");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  Parsed p{parse_options(static_cast<int>(argv.size()), argv.data(), out, err), "", ""};
  p.out = out.str();
  p.err = err.str();
  return p;
}

class OptionsTest : public ::testing::Test {
 protected:
  std::vector<std::string> minted(std::string url = "https://127.0.0.1:8443/Microsoft-Server-ActiveSync") {
    return {"--url", url, "--ca", pki_.ca_pem(), "--device-ca", pki_.ca_pem(), "--device-ca-key", pki_.ca_key(),
            "--devices", "10", "--scenario", "sync", "--connections", "4", "--duration", "2"};
  }
  TempPki pki_;
};

TEST(LoopbackTest, AcceptsOnlyLoopback) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_TRUE(is_loopback_host("LocalHost"));
  EXPECT_TRUE(is_loopback_host("::ffff:127.0.0.1"));
  EXPECT_FALSE(is_loopback_host("128.0.0.1"));
  EXPECT_FALSE(is_loopback_host("10.0.0.1"));
  EXPECT_FALSE(is_loopback_host("192.168.1.1"));
  EXPECT_FALSE(is_loopback_host("::2"));
  EXPECT_FALSE(is_loopback_host("::ffff:10.0.0.1"));
  EXPECT_FALSE(is_loopback_host("example.com"));
  EXPECT_FALSE(is_loopback_host("localhost.example.com"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host(""));
}

TEST_F(OptionsTest, ParsesAValidMintedRun) {
  auto p = parse(minted("https://localhost:9443/Microsoft-Server-ActiveSync"));
  ASSERT_TRUE(p.result.options) << p.err;
  const Options& o = *p.result.options;
  EXPECT_EQ(o.host, "localhost");
  EXPECT_EQ(o.port, 9443);
  EXPECT_EQ(o.path, "/Microsoft-Server-ActiveSync");
  EXPECT_EQ(o.scenario, Scenario::sync);
  EXPECT_EQ(o.devices, 10u);
  EXPECT_EQ(o.key_type, KeyType::p256);
  EXPECT_DOUBLE_EQ(*o.duration_s, 2);
  EXPECT_FALSE(o.requests);
  EXPECT_TRUE(o.minted());
  EXPECT_FALSE(o.resume);  // full handshakes unless asked
}

TEST_F(OptionsTest, ResumeIsAFlag) {
  auto args = minted();
  args.push_back("--resume");
  auto p = parse(args);
  ASSERT_TRUE(p.result.options) << p.err;
  EXPECT_TRUE(p.result.options->resume);
}

TEST_F(OptionsTest, IPv6LoopbackAndDefaults) {
  auto p = parse(minted("https://[::1]/Microsoft-Server-ActiveSync"));
  ASSERT_TRUE(p.result.options) << p.err;
  EXPECT_EQ(p.result.options->host, "::1");
  EXPECT_EQ(p.result.options->port, 443);
}

TEST_F(OptionsTest, RefusesNonLoopbackTargets) {
  for (const char* url : {"https://10.1.2.3:443/Microsoft-Server-ActiveSync", "https://exchange.example.com/x",
                          "https://[2001:db8::1]:443/x", "https://192.168.0.10/x"}) {
    auto p = parse(minted(url));
    EXPECT_FALSE(p.result.options) << url;
    EXPECT_NE(p.result.exit_code, 0);
    EXPECT_NE(p.err.find("not a loopback address"), std::string::npos) << p.err;
    EXPECT_EQ(std::count(p.err.begin(), p.err.end(), '\n'), 1) << "one line: " << p.err;
  }
}

TEST_F(OptionsTest, RefusesBadCombinations) {
  struct Case {
    std::vector<std::string> change;  // flag, value pairs appended (or replacing when already present)
    const char* message;
  };
  const std::vector<Case> cases = {
      {{"--url", "http://127.0.0.1:8443/x"}, "scheme must be https"},
      {{"--url", "not a url"}, "--url"},
      {{"--ca", "/nonexistent/ca.pem"}, "--ca: cannot read file"},
      {{"--device-ca-key", "/nonexistent/ca.key"}, "--device-ca-key: cannot read file"},
      {{"--requests", "5"}, "exactly one of --duration or --requests"},
      {{"--connections", "0"}, "--connections must be at least 1"},
      {{"--devices", "0"}, "--devices must be at least 1"},
      {{"--duration", "0"}, "--duration must be positive"},
      {{"--scenario", "flood"}, "--scenario"},
      {{"--key-type", "dsa"}, "--key-type"},
      {{"--cert", "x.pem"}, "either --cert and --key"},
      {{"--rate", "-1"}, "--rate must be positive"},
  };
  for (const auto& c : cases) {
    auto args = minted();
    for (std::size_t i = 0; i + 1 < c.change.size() + 1; i += 2) {
      auto it = std::find(args.begin(), args.end(), c.change[i]);
      if (it != args.end()) {
        *(it + 1) = c.change[i + 1];
      } else {
        args.push_back(c.change[i]);
        args.push_back(c.change[i + 1]);
      }
    }
    auto p = parse(args);
    EXPECT_FALSE(p.result.options) << c.message;
    EXPECT_EQ(p.result.exit_code, 2) << c.message;
    EXPECT_NE(p.err.find(c.message), std::string::npos) << "expected '" << c.message << "' in: " << p.err;
    EXPECT_EQ(p.err.rfind("easbench: ", 0), 0u) << p.err;
  }
}

TEST_F(OptionsTest, RateOnlyForRequestScenarios) {
  auto args = minted();
  args.insert(args.end(), {"--rate", "100"});
  EXPECT_TRUE(parse(args).result.options);
  *(std::find(args.begin(), args.end(), "sync") ) = "ping";
  auto p = parse(args);
  EXPECT_FALSE(p.result.options);
  EXPECT_NE(p.err.find("--rate applies to"), std::string::npos);
}

TEST_F(OptionsTest, MissingRequiredFlagIsOneLine) {
  auto p = parse({"--url", "https://127.0.0.1:1/x"});
  EXPECT_FALSE(p.result.options);
  EXPECT_EQ(p.result.exit_code, 2);
  EXPECT_EQ(std::count(p.err.begin(), p.err.end(), '\n'), 1) << p.err;
}

TEST_F(OptionsTest, HelpExitsZero) {
  auto p = parse({"--help"});
  EXPECT_FALSE(p.result.options);
  EXPECT_EQ(p.result.exit_code, 0);
  EXPECT_NE(p.out.find("--scenario"), std::string::npos);
}

// ---- latency ----

TEST(LatencyTest, NearestRank) {
  EXPECT_EQ(nearest_rank_index(0.5, 1), 0u);
  EXPECT_EQ(nearest_rank_index(0.5, 10), 4u);
  EXPECT_EQ(nearest_rank_index(0.9, 10), 8u);
  EXPECT_EQ(nearest_rank_index(0.99, 100), 98u);
  EXPECT_EQ(nearest_rank_index(0.99, 1000), 989u);
  EXPECT_EQ(nearest_rank_index(1.0, 7), 6u);
}

TEST(LatencyTest, ExactPercentilesOfShuffledSamples) {
  std::vector<std::uint32_t> samples(1000);
  std::iota(samples.begin(), samples.end(), 1);  // 1..1000 us
  std::shuffle(samples.begin(), samples.end(), std::mt19937(42));
  auto s = summarize_latency(samples);
  EXPECT_DOUBLE_EQ(s.p50_ms, 0.500);
  EXPECT_DOUBLE_EQ(s.p90_ms, 0.900);
  EXPECT_DOUBLE_EQ(s.p99_ms, 0.990);
  EXPECT_DOUBLE_EQ(s.max_ms, 1.000);
}

TEST(LatencyTest, OutlierShowsInMaxAndEmptyIsZero) {
  std::vector<std::uint32_t> samples(99, 1000);
  samples.push_back(250000);
  auto s = summarize_latency(samples);
  EXPECT_DOUBLE_EQ(s.p99_ms, 1.0);
  EXPECT_DOUBLE_EQ(s.max_ms, 250.0);
  std::vector<std::uint32_t> none;
  auto z = summarize_latency(none);
  EXPECT_EQ(z.max_ms, 0);
}

// ---- requests and report ----

TEST(RequestsTest, HeadCarriesActiveSyncIdentity) {
  const std::string head = request_head(Command::sync, {"/Microsoft-Server-ActiveSync", "127.0.0.1:8443", "user7",
                                                        "EASB000000000007"},
                                        1024, false);
  EXPECT_EQ(head.rfind("POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=user7&DeviceId=EASB000000000007&DeviceType=iPhone HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("\r\nHost: 127.0.0.1:8443\r\n"), std::string::npos);
  EXPECT_NE(head.find("\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n"), std::string::npos);
  EXPECT_NE(head.find("\r\nMS-ASProtocolVersion: 16.1\r\n"), std::string::npos);
  EXPECT_NE(head.find("\r\nContent-Length: 1024\r\n"), std::string::npos);
  EXPECT_EQ(head.find("Connection: close"), std::string::npos);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
  const std::string closing = request_head(Command::send_mail, {"/eas", "h", "u", "d"}, 10485760, true);
  EXPECT_NE(closing.find("?Cmd=SendMail&"), std::string::npos);
  EXPECT_NE(closing.find("Content-Length: 10485760\r\nConnection: close\r\n\r\n"), std::string::npos);
}

TEST(RequestsTest, BodiesAreWbxml) {
  EXPECT_EQ(sync_body().size(), sync_body_bytes);
  EXPECT_EQ(sync_body().substr(0, 4), std::string("\x03\x01\x6a\x00", 4));
  const std::string ping = ping_body(540);
  EXPECT_EQ(ping, std::string("\x03\x01\x6a\x00\x00\x0d\x45\x48\x03" "540\x00\x01\x01", 15));
  EXPECT_EQ(folder_sync_body(), std::string("\x03\x01\x6a\x00\x00\x07\x56\x52\x03" "0\x00\x01\x01", 13));
}

TEST(ReportTest, JsonHasExactlyTheContractFields) {
  RunResult r;
  r.scenario = "sync";
  r.connections = 64;
  r.duration_s = 2;
  r.requests = 1000;
  r.ok = 998;
  r.errors = 2;
  r.status_counts = {{200, 998}, {503, 2}};
  r.handshakes = 64;
  r.latency = {1.5, 2.5, 3.5, 9.25};
  r.aborted = 7;  // table only
  std::ostringstream json;
  write_json(r, json);
  EXPECT_EQ(json.str(),
            "{\"scenario\":\"sync\",\"connections\":64,\"duration_s\":2.000,\"requests\":1000,\"ok\":998,\"errors\":2,"
            "\"status_counts\":{\"200\":998,\"503\":2},\"rate_per_s\":500.000,\"handshakes\":64,"
            "\"handshake_rate_per_s\":32.000,\"latency_ms\":{\"p50\":1.500,\"p90\":2.500,\"p99\":3.500,\"max\":9.250}}\n");
  std::ostringstream table;
  write_table(r, table);
  EXPECT_NE(table.str().find("200:998 503:2"), std::string::npos);
  EXPECT_NE(table.str().find("easbench_cpu_s"), std::string::npos);
  EXPECT_EQ(table.str().find("handshakes_resumed"), std::string::npos);  // only with --resume

  r.resume = true;
  r.resumed_handshakes = 60;
  r.resume_missed = 1;
  std::ostringstream resumed_json, resumed_table;
  write_json(r, resumed_json);
  EXPECT_EQ(resumed_json.str(), json.str());  // the JSON contract does not change
  write_table(r, resumed_table);
  EXPECT_NE(resumed_table.str().find("handshakes_resumed        60\n"), std::string::npos) << resumed_table.str();
  EXPECT_NE(resumed_table.str().find("handshakes_full           4\n"), std::string::npos);
  EXPECT_NE(resumed_table.str().find("resume_missed             1\n"), std::string::npos);
}

// ---- identities ----

TEST(IdentityTest, MintsWorkspaceOneShapedDevices) {
  TempPki pki;
  std::vector<std::uint32_t> progress;
  auto ids = mint_identities(pki.ca_pem(), pki.ca_key(), 5, "corp.example.test", KeyType::p256, 2,
                             [&](std::uint32_t done) { progress.push_back(done); });
  ASSERT_EQ(ids.size(), 5u);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), 5u);
  std::set<std::string> device_ids;
  for (std::uint32_t i = 0; i < ids.size(); ++i) {
    const DeviceIdentity& id = ids[i];
    const std::string user = "user" + std::to_string(i + 1);
    EXPECT_EQ(id.user, user);
    EXPECT_EQ(id.upn, user + "@corp.example.test");
    EXPECT_EQ(subject_of(id.cert.get()), "/CN=WorkspaceONEUEM." + user);
    EXPECT_EQ(upn_of(id.cert.get()), id.upn);
    EXPECT_TRUE(verifies(id.cert.get(), pki.ca())) << user;
    EXPECT_EQ(X509_check_private_key(id.cert.get(), id.key.get()), 1);
    EXPECT_EQ(EVP_PKEY_get_base_id(id.key.get()), EVP_PKEY_EC);
    EXPECT_TRUE(X509_get_extended_key_usage(id.cert.get()) & XKU_SSL_CLIENT);
    EXPECT_EQ(X509_check_email(id.cert.get(), id.upn.c_str(), 0, 0), 1);
    device_ids.insert(id.device_id);
  }
  EXPECT_EQ(device_ids.size(), ids.size());
  EXPECT_EQ(ids[0].device_id, "EASB000000000001");
  EXPECT_EQ(device_id_for(255), "EASB0000000000FF");
}

TEST(IdentityTest, Rsa2048KeysComeFromAPool) {
  TempPki pki;
  const std::uint32_t n = rsa_key_pool + 3;
  auto ids = mint_identities(pki.ca_pem(), pki.ca_key(), n, "d.test", KeyType::rsa2048, 2, [](std::uint32_t) {});
  ASSERT_EQ(ids.size(), n);
  EXPECT_EQ(EVP_PKEY_get_base_id(ids[0].key.get()), EVP_PKEY_RSA);
  EXPECT_EQ(EVP_PKEY_get_bits(ids[0].key.get()), 2048);
  EXPECT_EQ(ids[0].key.get(), ids[rsa_key_pool].key.get());
  EXPECT_NE(ids[0].key.get(), ids[1].key.get());
  EXPECT_TRUE(verifies(ids[n - 1].cert.get(), pki.ca()));
  EXPECT_EQ(X509_check_private_key(ids[n - 1].cert.get(), ids[n - 1].key.get()), 1);
}

TEST(IdentityTest, BadCaInputIsAClearError) {
  TempPki pki;
  auto noop = [](std::uint32_t) {};
  auto message = [&](const fs::path& ca, const fs::path& key) {
    try {
      mint_identities(ca, key, 1, "d.test", KeyType::p256, 1, noop);
    } catch (const IdentityError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(pki.ca_pem(), pki.other_key()).find("does not match"), std::string::npos);
  EXPECT_NE(message(pki.ca_pem(), pki.ca_pem()).find("no unencrypted PEM private key"), std::string::npos);
  EXPECT_NE(message(pki.ca_key(), pki.ca_key()).find("no PEM certificate"), std::string::npos);
  EXPECT_NE(message(pki.dir() / "missing.pem", pki.ca_key()).find("cannot open"), std::string::npos);
}

TEST(IdentityTest, LoadsOneIdentityFromFilesAndChecksTheKey) {
  TempPki pki;
  auto ids = mint_identities(pki.ca_pem(), pki.ca_key(), 1, "corp.example.test", KeyType::p256, 1, [](std::uint32_t) {});
  testing::TempDir dir("easbench-identity");
  const fs::path cert = dir.write("dev.pem", testing::to_pem(ids[0].cert.get()));
  const fs::path key = dir.write("dev.key", testing::to_pem(ids[0].key.get()));
  DeviceIdentity id = load_identity(cert, key);
  EXPECT_EQ(id.upn, "user1@corp.example.test");
  EXPECT_EQ(id.user, "user1");
  EXPECT_THROW(load_identity(cert, pki.other_key()), IdentityError);
}

}  // namespace
}  // namespace easedge::bench
