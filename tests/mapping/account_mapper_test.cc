// The mapper's decisions: Windows lookup order, NTAuth, strong binding modes, disabled accounts, groups,
// the subject template, the cache, and directory outages.
#include "mapping/account_mapper.h"

#include "mapping/certificate_bindings.h"
#include "mapping/ldif_directory.h"
#include "mapping/sid.h"
#include "tests/support/test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <future>
#include <thread>

namespace easedge::mapping {
namespace {

using config::StrongBinding;
using testing::CertSpec;
using testing::Name;

const std::string domain_sid = "S-1-5-21-1004336348-1177238915-682003330";
const std::string group_dn = "CN=EAS Users,OU=Groups,DC=corp,DC=example,DC=test";

std::string base64(const std::vector<unsigned char>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// One LDIF user; `extra` holds further attribute lines.
std::string user(const std::string& name, int rid, const std::string& extra = "", int uac = 512,
                 const std::string& when_created = "20200101000000.0Z") {
  return "dn: CN=" + name + ",CN=Users,DC=corp,DC=example,DC=test\n"
         "objectClass: user\n"
         "sAMAccountName: " + name + "\n"
         "userPrincipalName: " + name + "@corp.example.test\n"
         "objectSid:: " + base64(*sid_from_string(domain_sid + "-" + std::to_string(rid))) + "\n"
         "userAccountControl: " + std::to_string(uac) + "\n"
         "whenCreated: " + when_created + "\n" + extra + "\n";
}

// A directory whose answers the test controls; counts calls and records the calling thread.
class FakeDirectory : public Directory {
public:
  explicit FakeDirectory(std::shared_ptr<Directory> inner, bool blocking) : inner_(std::move(inner)), blocking_(blocking) {}
  DirectorySearch search(const DirectoryQuery& query) override {
    ++searches;
    thread = std::this_thread::get_id();
    std::this_thread::sleep_for(delay);
    if (down) return {DirectoryStatus::unavailable, {}, "connection refused"};
    return inner_->search(query);
  }
  DirectoryMembership is_member(const std::string& account, const std::string& group) override {
    if (down_for_groups) return {DirectoryStatus::unavailable, false, "timeout"};
    return inner_->is_member(account, group);
  }
  bool blocking() const override { return blocking_; }

  std::atomic<int> searches{0};
  std::atomic<bool> down{false};
  std::atomic<bool> down_for_groups{false};
  std::chrono::milliseconds delay{0};  // each search takes at least this long
  std::thread::id thread;

private:
  std::shared_ptr<Directory> inner_;
  bool blocking_;
};

class AccountMapperTest : public ::testing::Test {
protected:
  AccountMapperTest()
      : ca_(testing::make_ca(Name{{{"DC", "test"}}, {{"DC", "example"}}, {{"CN", "Test Issuing CA"}}})),
        other_ca_(testing::make_ca(Name{{{"CN", "Other CA"}}})) {
    std::ofstream(dir_ / "ntauth.pem") << testing::to_pem(ca_.cert.get());
    config_.ntauth = {dir_ / "ntauth.pem"};
    config_.strong_binding = StrongBinding::full;
  }
  // A Workspace ONE-shaped certificate with only a UPN SAN.
  testing::Issued issue_upn(const std::string& upn) {
    CertSpec spec;
    spec.upn = upn;
    return issue(spec);
  }

  testing::Issued issue(CertSpec spec, const testing::Issued* ca = nullptr) {
    if (spec.subject.empty()) spec.subject = Name{{{"CN", "WorkspaceONEUEM.alice"}}};
    return testing::issue(spec, ca ? *ca : ca_);
  }

  std::shared_ptr<Directory> directory(const std::string& ldif) {
    std::ofstream(dir_ / "users.ldif") << ldif;
    return LdifDirectory::load(dir_ / "users.ldif");
  }

  MapResult map(const std::string& ldif, const testing::Issued& cert, const testing::Issued* issuer = nullptr) {
    auto mapper = make_account_mapper(config_, directory(ldif), 0);
    return map_with(*mapper, cert, issuer);
  }

  MapResult map_with(AccountMapper& mapper, const testing::Issued& cert, const testing::Issued* issuer = nullptr) {
    std::promise<MapResult> promise;
    int calls = 0;
    mapper.map({cert.cert, (issuer ? *issuer : ca_).cert}, [&](MapResult r) {
      ++calls;
      promise.set_value(std::move(r));
    });
    auto result = promise.get_future().get();
    EXPECT_EQ(calls, 1);
    return result;
  }

  testing::Issued ca_;
  testing::Issued other_ca_;
  testing::TempDir test_dir_{"easedge-mapper"};
  const std::filesystem::path& dir_ = test_dir_.path();
  config::MappingConfig config_;
};

TEST_F(AccountMapperTest, EveryExplicitFormatMapsWithItsMethodAndStrength) {
  CertSpec spec;
  spec.email = "alice.phone@corp.example.test";
  auto cert = issue(spec);
  auto b = certificate_bindings(cert.cert.get());
  struct Case {
    std::string value;
    std::string method;
    bool strong;
  };
  for (const auto& c : std::vector<Case>{{b.issuer_serial, "altsec:issuer-serial", true},
                                         {*b.ski, "altsec:ski", true},
                                         {b.sha1_pukey, "altsec:sha1-pukey", true},
                                         {*b.issuer_subject, "altsec:issuer-subject", false},
                                         {*b.subject, "altsec:subject", false},
                                         {*b.rfc822, "altsec:rfc822", false}}) {
    config_.strong_binding = StrongBinding::compatibility;
    // carol has no UPN match with the certificate: only the binding can find her.
    auto r = map(user("carol", 1106, "altSecurityIdentities: " + c.value + "\n"), cert);
    EXPECT_EQ(r.status, MapStatus::mapped) << c.method << ": " << r.reason;
    EXPECT_EQ(r.method, c.method);
    EXPECT_EQ(r.strong, c.strong) << c.method;
    ASSERT_TRUE(r.account);
    EXPECT_EQ(r.account->sam_account_name, "carol");
    EXPECT_EQ(r.account->object_sid, domain_sid + "-1106");

    config_.strong_binding = StrongBinding::full;
    r = map(user("carol", 1106, "altSecurityIdentities: " + c.value + "\n"), cert);
    EXPECT_EQ(r.status == MapStatus::mapped, c.strong) << c.method << " under full: " << r.reason;
  }
}

TEST_F(AccountMapperTest, StoredValuesMatchInAnyCaseAndWithSambaSerialOrder) {
  CertSpec spec;
  spec.serial = {0x1a, 0x2b, 0x3c};
  auto cert = issue(spec);
  auto r = map(user("carol", 1106, "altSecurityIdentities: x509:<i>dc=test,dc=example,cn=test issuing ca<sr>1A2B3C\n"),
               cert);
  EXPECT_EQ(r.status, MapStatus::mapped) << r.reason;
  EXPECT_EQ(r.method, "altsec:issuer-serial");
}

TEST_F(AccountMapperTest, ExplicitMappingWinsOverUpn) {
  CertSpec spec;
  spec.upn = "alice@corp.example.test";
  auto cert = issue(spec);
  auto bindings = certificate_bindings(cert.cert.get());
  auto r = map(user("alice", 1104) + user("carol", 1106, "altSecurityIdentities: " + *bindings.ski + "\n"), cert);
  EXPECT_EQ(r.status, MapStatus::mapped);
  EXPECT_EQ(r.method, "altsec:ski");
  EXPECT_EQ(r.account->sam_account_name, "carol");
}

TEST_F(AccountMapperTest, StrongerBindingWinsOverWeakerOnAnotherAccount) {
  auto cert = issue({});
  auto b = certificate_bindings(cert.cert.get());
  auto r = map(user("bob", 1105, "altSecurityIdentities: " + *b.subject + "\n") +
                   user("carol", 1106, "altSecurityIdentities: " + b.sha1_pukey + "\n"),
               cert);
  EXPECT_EQ(r.method, "altsec:sha1-pukey");
  EXPECT_EQ(r.account->sam_account_name, "carol");
}

TEST_F(AccountMapperTest, AmbiguousBindingIsRefused) {
  auto cert = issue({});
  auto b = certificate_bindings(cert.cert.get());
  auto line = "altSecurityIdentities: " + b.issuer_serial + "\n";
  auto r = map(user("bob", 1105, line) + user("carol", 1106, line), cert);
  EXPECT_EQ(r.status, MapStatus::not_mapped);
  EXPECT_NE(r.reason.find("ambiguous: 2 accounts"), std::string::npos) << r.reason;
}

TEST_F(AccountMapperTest, UpnWithMatchingSidExtensionIsStrong) {
  CertSpec spec;
  spec.upn = "alice@corp.example.test";
  spec.sid_extension = domain_sid + "-1104";
  auto r = map(user("alice", 1104, "mail: alice.smith@example.org\n"), issue(spec));
  EXPECT_EQ(r.status, MapStatus::mapped) << r.reason;
  EXPECT_EQ(r.method, "upn");
  EXPECT_TRUE(r.strong);
  EXPECT_EQ(r.account->user_principal_name, "alice@corp.example.test");
  EXPECT_EQ(r.account->sam_account_name, "alice");
  EXPECT_EQ(r.account->mail, "alice.smith@example.org");  // for upstream.identity_format: mail
}

TEST_F(AccountMapperTest, UpnWithSidUriIsStrong) {
  CertSpec spec;
  spec.upn = "ALICE@corp.example.test";
  spec.uris = {"tag:microsoft.com,2022-09-14:sid:" + domain_sid + "-1104"};
  auto r = map(user("alice", 1104), issue(spec));
  EXPECT_EQ(r.status, MapStatus::mapped) << r.reason;
  EXPECT_TRUE(r.strong);
}

TEST_F(AccountMapperTest, WeakUpnMappingFollowsTheMode) {
  CertSpec spec;
  spec.upn = "bob@corp.example.test";
  auto cert = issue(spec);
  auto r = map(user("bob", 1105), cert);
  EXPECT_EQ(r.status, MapStatus::not_mapped);
  EXPECT_EQ(r.method, "upn");
  ASSERT_TRUE(r.account);  // named in the refusal
  EXPECT_EQ(r.account->sam_account_name, "bob");
  EXPECT_NE(r.reason.find("strong_binding is full"), std::string::npos) << r.reason;

  config_.strong_binding = StrongBinding::compatibility;
  r = map(user("bob", 1105), cert);
  EXPECT_EQ(r.status, MapStatus::mapped);
  EXPECT_FALSE(r.strong);
  EXPECT_FALSE(r.reason.empty());

  config_.strong_binding = StrongBinding::disabled;
  EXPECT_EQ(map(user("bob", 1105), cert).status, MapStatus::mapped);
}

TEST_F(AccountMapperTest, SidMismatchDeniesEvenWithUpnMatch) {
  CertSpec spec;
  spec.upn = "bob@corp.example.test";
  spec.sid_extension = domain_sid + "-1104";  // alice's SID in a certificate naming bob
  auto cert = issue(spec);
  for (auto mode : {StrongBinding::compatibility, StrongBinding::full}) {
    config_.strong_binding = mode;
    auto r = map(user("alice", 1104) + user("bob", 1105), cert);
    EXPECT_EQ(r.status, MapStatus::not_mapped);
    EXPECT_NE(r.reason.find("does not match the account's objectSid"), std::string::npos) << r.reason;
  }
  config_.strong_binding = StrongBinding::disabled;
  EXPECT_EQ(map(user("alice", 1104) + user("bob", 1105), cert).status, MapStatus::mapped);
}

TEST_F(AccountMapperTest, CompatibilityRefusesWeakMappingOfCertificateOlderThanTheAccount) {
  config_.strong_binding = StrongBinding::compatibility;
  CertSpec spec;
  spec.upn = "bob@corp.example.test";
  spec.not_before_offset = -7200;
  auto cert = issue(spec);
  // The account was created an hour ago: the certificate is older.
  std::time_t hour_ago = std::time(nullptr) - 3600;
  char created[32];
  std::strftime(created, sizeof created, "%Y%m%d%H%M%S.0Z", std::gmtime(&hour_ago));
  auto r = map(user("bob", 1105, "", 512, created), cert);
  EXPECT_EQ(r.status, MapStatus::not_mapped);
  EXPECT_NE(r.reason.find("predates the account"), std::string::npos) << r.reason;
  config_.backdating_compensation = std::chrono::seconds(7200);
  EXPECT_EQ(map(user("bob", 1105, "", 512, created), cert).status, MapStatus::mapped);
}

TEST_F(AccountMapperTest, ImplicitMappingNeedsTheIssuerInNtauth) {
  config_.strong_binding = StrongBinding::disabled;
  CertSpec spec;
  spec.upn = "bob@corp.example.test";
  auto cert = issue(spec, &other_ca_);
  auto r = map(user("bob", 1105), cert, &other_ca_);
  EXPECT_EQ(r.status, MapStatus::not_mapped);
  EXPECT_NE(r.reason.find("not in ntauth"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("CN=Other CA"), std::string::npos) << r.reason;
  // An explicit binding still works for a CA outside NTAuth.
  auto b = certificate_bindings(cert.cert.get());
  r = map(user("bob", 1105, "altSecurityIdentities: " + b.issuer_serial + "\n"), cert, &other_ca_);
  EXPECT_EQ(r.status, MapStatus::mapped) << r.reason;
  // Without an NTAuth store there is no implicit mapping at all.
  config_.ntauth.clear();
  EXPECT_EQ(map(user("bob", 1105), issue(spec)).status, MapStatus::not_mapped);
}

TEST_F(AccountMapperTest, DisabledAccountNeverMaps) {
  CertSpec spec;
  spec.upn = "disabled@corp.example.test";
  auto cert = issue(spec);
  auto b = certificate_bindings(cert.cert.get());
  for (auto mode : {StrongBinding::disabled, StrongBinding::full}) {
    config_.strong_binding = mode;
    auto r = map(user("disabled", 1110, "altSecurityIdentities: " + b.issuer_serial + "\n", 514), cert);
    EXPECT_EQ(r.status, MapStatus::not_mapped);
    EXPECT_EQ(r.reason, "account disabled is disabled");
  }
}

TEST_F(AccountMapperTest, LockedOutAndExpiredAccountsNeverMap) {
  config_.strong_binding = StrongBinding::disabled;
  CertSpec spec;
  spec.upn = "bob@corp.example.test";
  auto cert = issue(spec);
  EXPECT_NE(map(user("bob", 1105, "msDS-User-Account-Control-Computed: 16\n"), cert).reason.find("locked out"),
            std::string::npos);
  EXPECT_NE(map(user("bob", 1105, "accountExpires: 130000000000000000\n"), cert).reason.find("expired"),
            std::string::npos);  // 2012
  EXPECT_EQ(map(user("bob", 1105, "accountExpires: 9223372036854775807\n"), cert).status, MapStatus::mapped);
  // Found by ldif_fuzz: a date past 2262 overflowed the nanosecond clock (UB, here a date in the past).
  EXPECT_EQ(map(user("bob", 1105, "accountExpires: 9223372036854775806\n"), cert).status, MapStatus::mapped);
}

TEST_F(AccountMapperTest, RequireGroupIsTransitive) {
  config_.strong_binding = StrongBinding::disabled;
  config_.require_group = group_dn;
  CertSpec spec;
  spec.upn = "bob@corp.example.test";
  auto cert = issue(spec);
  std::string groups =
      "dn: CN=Phones,OU=Groups,DC=corp,DC=example,DC=test\nobjectClass: group\nmemberOf: " + group_dn + "\n\n" +
      "dn: " + group_dn + "\nobjectClass: group\n\n";
  auto r = map(groups + user("bob", 1105, "memberOf: CN=Phones,OU=Groups,DC=corp,DC=example,DC=test\n"), cert);
  EXPECT_EQ(r.status, MapStatus::mapped) << r.reason;
  r = map(groups + user("bob", 1105), cert);
  EXPECT_EQ(r.status, MapStatus::not_mapped);
  EXPECT_EQ(r.reason, "account bob is not a member of " + group_dn);
}

TEST_F(AccountMapperTest, SubjectTemplateMapsTheWorkspaceOneSubject) {
  config_.strong_binding = StrongBinding::compatibility;
  config_.subject_template = "CN=WorkspaceONEUEM.{sAMAccountName}";
  CertSpec spec;
  spec.subject = Name{{{"CN", "WorkspaceONEUEM.bob"}}};
  auto r = map(user("bob", 1105), issue(spec));
  EXPECT_EQ(r.status, MapStatus::mapped) << r.reason;
  EXPECT_EQ(r.method, "subject-template");
  // The UPN comes first when the certificate has one.
  spec.upn = "alice@corp.example.test";
  r = map(user("alice", 1104) + user("bob", 1105), issue(spec));
  EXPECT_EQ(r.method, "upn");
  EXPECT_EQ(r.account->sam_account_name, "alice");
}

TEST_F(AccountMapperTest, NothingMatchesExplainsEveryStage) {
  config_.subject_template = "CN=Device.{sAMAccountName}";
  CertSpec spec;
  spec.upn = "nobody@corp.example.test";
  auto r = map(user("bob", 1105), issue(spec));
  EXPECT_EQ(r.status, MapStatus::not_mapped);
  EXPECT_FALSE(r.account);
  EXPECT_EQ(r.method, "");
  EXPECT_EQ(r.reason,
            "no account holds an altSecurityIdentities value of this certificate; no account has userPrincipalName "
            "nobody@corp.example.test; the subject does not match subject_template");
}

TEST_F(AccountMapperTest, MissingCertificateIsRefused) {
  auto mapper = make_account_mapper(config_, directory(user("bob", 1105)), 0);
  std::optional<MapResult> result;
  mapper->map({}, [&](MapResult r) { result = r; });
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, MapStatus::not_mapped);
}

TEST_F(AccountMapperTest, CacheAnswersRepeatsWithoutTheDirectory) {
  config_.strong_binding = StrongBinding::disabled;
  auto fake = std::make_shared<FakeDirectory>(directory(user("bob", 1105)), false);
  auto mapper = make_account_mapper(config_, fake, 0);
  auto known = issue_upn("bob@corp.example.test");
  auto unknown = issue_upn("nobody@corp.example.test");
  EXPECT_EQ(map_with(*mapper, known).status, MapStatus::mapped);
  EXPECT_EQ(map_with(*mapper, known).status, MapStatus::mapped);
  EXPECT_EQ(map_with(*mapper, unknown).status, MapStatus::not_mapped);
  EXPECT_EQ(map_with(*mapper, unknown).status, MapStatus::not_mapped);
  EXPECT_EQ(fake->searches, 2);
}

TEST_F(AccountMapperTest, DirectoryOutageIsUnavailableNeverRefusedAndNotCached) {
  config_.strong_binding = StrongBinding::disabled;
  auto fake = std::make_shared<FakeDirectory>(directory(user("bob", 1105) + user("carol", 1106)), false);
  auto mapper = make_account_mapper(config_, fake, 0);
  auto bob = issue_upn("bob@corp.example.test");
  auto carol = issue_upn("carol@corp.example.test");
  EXPECT_EQ(map_with(*mapper, bob).status, MapStatus::mapped);
  fake->down = true;
  auto r = map_with(*mapper, carol);
  EXPECT_EQ(r.status, MapStatus::directory_unavailable);
  EXPECT_NE(r.reason.find("connection refused"), std::string::npos);
  EXPECT_EQ(map_with(*mapper, bob).status, MapStatus::mapped);  // from the cache
  fake->down = false;
  EXPECT_EQ(map_with(*mapper, carol).status, MapStatus::mapped);  // the outage was not cached
}

TEST_F(AccountMapperTest, GroupCheckOutageIsUnavailable) {
  config_.strong_binding = StrongBinding::disabled;
  config_.require_group = group_dn;
  auto fake = std::make_shared<FakeDirectory>(directory(user("bob", 1105)), false);
  fake->down_for_groups = true;
  auto mapper = make_account_mapper(config_, fake, 0);
  EXPECT_EQ(map_with(*mapper, issue_upn("bob@corp.example.test")).status, MapStatus::directory_unavailable);
}

TEST_F(AccountMapperTest, StatsCountCacheHitsMissesAndDirectoryRequests) {
  config_.strong_binding = StrongBinding::disabled;
  config_.require_group = group_dn;
  auto fake = std::make_shared<FakeDirectory>(
      directory(user("bob", 1105, "memberOf: " + group_dn + "\n") + user("carol", 1106, "memberOf: " + group_dn + "\n")),
      false);
  auto mapper = make_account_mapper(config_, fake, 0);
  auto bob = issue_upn("bob@corp.example.test");
  auto nobody = issue_upn("nobody@corp.example.test");
  EXPECT_EQ(map_with(*mapper, bob).status, MapStatus::mapped);         // miss: search + group check
  EXPECT_EQ(map_with(*mapper, bob).status, MapStatus::mapped);         // hit
  EXPECT_EQ(map_with(*mapper, nobody).status, MapStatus::not_mapped);  // miss: search only
  EXPECT_EQ(map_with(*mapper, nobody).status, MapStatus::not_mapped);  // hit (negative cache)
  auto stats = mapper->stats();
  EXPECT_EQ(stats.cache_hits, 2u);
  EXPECT_EQ(stats.cache_misses, 2u);
  EXPECT_EQ(stats.directory_requests, 3u);

  // A failed request is a request too, and an outage is never cached: each try is a miss.
  fake->down = true;
  auto carol = issue_upn("carol@corp.example.test");
  EXPECT_EQ(map_with(*mapper, carol).status, MapStatus::directory_unavailable);
  EXPECT_EQ(map_with(*mapper, carol).status, MapStatus::directory_unavailable);
  stats = mapper->stats();
  EXPECT_EQ(stats.cache_hits, 2u);
  EXPECT_EQ(stats.cache_misses, 4u);
  EXPECT_EQ(stats.directory_requests, 5u);

  // No certificate asks neither the cache nor the directory.
  mapper->map({}, [](MapResult) {});
  EXPECT_EQ(mapper->stats().cache_misses, 4u);
}

TEST_F(AccountMapperTest, StatsTimeEachDirectoryRequest) {
  config_.strong_binding = StrongBinding::disabled;
  auto fake = std::make_shared<FakeDirectory>(directory(user("bob", 1105)), true);
  fake->delay = std::chrono::milliseconds(30);
  auto mapper = make_account_mapper(config_, fake, 1);
  EXPECT_EQ(map_with(*mapper, issue_upn("bob@corp.example.test")).status, MapStatus::mapped);
  auto stats = mapper->stats();
  ASSERT_EQ(stats.directory_requests, 1u);
  // At least 30 ms: not in any bucket up to 0.025 s (how much longer it took is the machine's business).
  const auto& bounds = MappingStats::directory_seconds_bounds;
  for (std::size_t i = 0; i < bounds.size() && bounds[i] < 0.03; ++i) EXPECT_EQ(stats.directory_seconds_le[i], 0u);
  EXPECT_GE(stats.directory_seconds_sum, 0.03);
}

TEST_F(AccountMapperTest, BlockingDirectoryRunsOnWorkerThreads) {
  config_.strong_binding = StrongBinding::disabled;
  auto fake = std::make_shared<FakeDirectory>(directory(user("bob", 1105)), true);
  auto mapper = make_account_mapper(config_, fake, 2);
  auto cert = issue_upn("bob@corp.example.test");
  std::vector<std::future<MapResult>> results;
  for (int i = 0; i < 8; ++i) {
    auto promise = std::make_shared<std::promise<MapResult>>();
    results.push_back(promise->get_future());
    mapper->map({cert.cert, ca_.cert}, [promise](MapResult r) { promise->set_value(std::move(r)); });
  }
  for (auto& r : results) EXPECT_EQ(r.get().status, MapStatus::mapped);
  EXPECT_NE(fake->thread, std::this_thread::get_id());
}

TEST_F(AccountMapperTest, UnreadableNtauthFailsAtStartUp) {
  config_.ntauth = {dir_ / "absent.pem"};
  EXPECT_THROW(make_account_mapper(config_, directory(""), 0), std::runtime_error);
  std::ofstream(dir_ / "empty.pem") << "not a certificate\n";
  config_.ntauth = {dir_ / "empty.pem"};
  EXPECT_THROW(make_account_mapper(config_, directory(""), 0), std::runtime_error);
}

}  // namespace
}  // namespace easedge::mapping
