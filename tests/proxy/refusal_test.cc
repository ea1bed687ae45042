// The refusal table: every reason has the status, IIS substatus and wording devices and admins rely on.
#include "proxy/refusal.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace easedge::proxy {
namespace {

TEST(RefusalTable, CertificateReasonsUseIisSubstatuses) {
  EXPECT_EQ(describe(Refusal::no_client_certificate).status, 403);
  EXPECT_EQ(describe(Refusal::no_client_certificate).substatus, 7);
  EXPECT_EQ(describe(Refusal::certificate_revoked).substatus, 13);
  EXPECT_EQ(describe(Refusal::revocation_unavailable).substatus, 13);
  EXPECT_EQ(describe(Refusal::certificate_untrusted).substatus, 16);
  EXPECT_EQ(describe(Refusal::certificate_wrong_usage).substatus, 16);
  EXPECT_EQ(describe(Refusal::certificate_unmappable).substatus, 16);
  EXPECT_EQ(describe(Refusal::certificate_expired).substatus, 17);
  EXPECT_EQ(describe(Refusal::certificate_not_yet_valid).substatus, 17);
}

TEST(RefusalTable, TransientOutagesAre503WithRetryAfterNever403) {
  for (auto reason : {Refusal::directory_unavailable, Refusal::kdc_unavailable, Refusal::upstreams_down,
                      Refusal::overloaded}) {
    EXPECT_EQ(describe(reason).status, 503) << describe(reason).name;
    EXPECT_TRUE(describe(reason).retry_after) << describe(reason).name;
  }
}

TEST(RefusalTable, UpstreamAndFramingStatuses) {
  EXPECT_EQ(describe(Refusal::upstream_unreachable).status, 502);
  EXPECT_EQ(describe(Refusal::upstream_timeout).status, 504);
  EXPECT_EQ(describe(Refusal::body_too_large).status, 413);
  EXPECT_TRUE(describe(Refusal::body_too_large).close_connection);
  EXPECT_EQ(describe(Refusal::bad_request).status, 400);
  EXPECT_TRUE(describe(Refusal::bad_request).close_connection);
  EXPECT_EQ(describe(Refusal::not_found).status, 404);
}

TEST(RefusalTable, EveryReasonHasAUniqueNameAndText) {
  std::set<std::string> names;
  for (std::uint8_t i = 0; i < refusal_count; ++i) {
    const auto& info = describe(static_cast<Refusal>(i));
    EXPECT_FALSE(info.name.empty());
    EXPECT_FALSE(info.text.empty());
    EXPECT_GE(info.status, 400);
    EXPECT_TRUE(names.insert(std::string(info.name)).second) << "duplicate name " << info.name;
  }
}

TEST(RefusalBody, IisStatusLineThenRequestIdAndNothingElse) {
  EXPECT_EQ(refusal_body(Refusal::certificate_revoked, "5f0c3a9e00000001"),
            "403.13 Forbidden: client certificate revoked.\r\nRequest-Id: 5f0c3a9e00000001\r\n");
  EXPECT_EQ(refusal_body(Refusal::not_found, "5f0c3a9e00000002"),
            "404 Not found.\r\nRequest-Id: 5f0c3a9e00000002\r\n");
  for (std::uint8_t i = 0; i < refusal_count; ++i) {
    auto reason = static_cast<Refusal>(i);
    const auto& info = describe(reason);
    EXPECT_EQ(refusal_body(reason, "id"),
              status_text(info) + " " + std::string(info.text) + "\r\nRequest-Id: id\r\n")
        << info.name;
  }
}

TEST(RefusalTable, WordingNamesNoInternals) {
  // The text is all a device learns: the class of refusal, never where easedge keeps things or whom it asked.
  for (std::uint8_t i = 0; i < refusal_count; ++i) {
    std::string text(describe(static_cast<Refusal>(i)).text);
    for (const char* internal : {"/", "\\", "CN=", "DC=", "S-1-5-", "@", "ldap", ".crl"})
      EXPECT_EQ(text.find(internal), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace easedge::proxy
