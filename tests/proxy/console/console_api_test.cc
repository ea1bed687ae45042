#include "proxy/console/console_api.h"

#include "proxy/console/assets.h"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace easedge::proxy::console {
namespace {

namespace json = boost::json;

TEST(SerializeForBrowser, NoMarkupCanOpenOrClose) {
  const std::string subject = "CN=<script>alert(1)</script>,O=\"><img src=x onerror=alert(2)>&amp;";
  json::value v{{"subject", subject}, {"line", "a\xE2\x80\xA8" "b"}};
  const auto text = serialize_for_browser(v);
  EXPECT_EQ(text.find('<'), std::string::npos) << text;
  EXPECT_EQ(text.find('>'), std::string::npos) << text;
  EXPECT_EQ(text.find('&'), std::string::npos) << text;
  EXPECT_EQ(text.find("\xE2\x80\xA8"), std::string::npos) << text;
  EXPECT_NE(text.find("\\u003cscript\\u003e"), std::string::npos) << text;
  EXPECT_EQ(json::parse(text), v);  // the same value for a JSON reader
}

TEST(RefusalsJson, CarriesEveryColumnOfTheRing) {
  RefusalEntry r;
  r.time = std::chrono::system_clock::time_point(std::chrono::seconds(1800000000));
  r.client_address = "192.0.2.7";
  r.subject = "CN=<script>x</script>";
  r.device_id = "\"><img src=x>";
  r.device_type = "iPhone";
  r.command = "Sync";
  r.status = 403;
  r.substatus = 13;
  r.refusal = "certificate_revoked";
  r.detail = "serial 1A revoked";
  r.request_id = "r1";
  auto v = refusals_json({r});
  const auto& row = v.at("refusals").at(0);
  EXPECT_EQ(row.at("time"), "2027-01-15T08:00:00Z");
  EXPECT_EQ(row.at("status"), "403.13");
  EXPECT_EQ(row.at("subject"), "CN=<script>x</script>");
  EXPECT_EQ(row.at("device_id"), "\"><img src=x>");
  EXPECT_TRUE(row.at("user").is_null());
  EXPECT_EQ(row.at("cmd"), "Sync");
  EXPECT_EQ(row.at("reason"), "certificate_revoked");
  EXPECT_EQ(v.at("capacity"), 1000);
}

TEST(ActivityJson, ListsDevicesAndUsers) {
  ConsoleLog log;
  log.record({.time = std::chrono::system_clock::now(), .user = "alice@corp.example.test", .device_id = "D1",
              .device_type = "iPhone", .status = 200});
  auto v = activity_json(log, 5);
  EXPECT_EQ(v.at("devices").at(0).at("key"), "D1");
  EXPECT_EQ(v.at("devices").at(0).at("device_type"), "iPhone");
  EXPECT_EQ(v.at("users").at(0).at("key"), "alice@corp.example.test");
  EXPECT_EQ(v.at("untracked"), 0);
}

TEST(OverviewJson, CountsRefusalsByClass) {
  MetricsRegistry registry;
  EasedgeMetrics metrics(registry);
  metrics.refusals.with({"certificate_revoked"}).inc(2);
  metrics.refusals.with({"revocation_unavailable"}).inc();
  metrics.refusals.with({"body_too_large"}).inc();
  metrics.requests.with({"200", "Sync"}).inc(5);
  metrics.handshakes.with({"ok"}).inc(3);
  ConsoleLog log;
  auto v = overview_json(metrics, log, std::chrono::system_clock::now(), 2);
  EXPECT_EQ(v.at("refusals").at("403.13"), 3);
  EXPECT_EQ(v.at("refusals").at("413"), 1);
  EXPECT_EQ(v.at("requests"), 5);
  EXPECT_EQ(v.at("handshakes").at("ok"), 3);
  EXPECT_EQ(v.at("handshakes").at("resumed"), 2);
  EXPECT_TRUE(v.at("refusals_per_minute").as_array().empty());
}

TEST(Assets, PagesAreCompiledInAndFetchNothingFromOutside) {
  for (const char* name : {"console.html", "console.js", "console.css", "logo.svg"}) {
    auto asset = find_asset(name);
    ASSERT_TRUE(asset) << name;
    EXPECT_FALSE(asset->body.empty()) << name;
    // The one absolute URL allowed is the SVG namespace name, which is never fetched.
    std::string body(asset->body);
    for (std::size_t at = body.find("http"); at != std::string::npos; at = body.find("http", at + 1))
      EXPECT_EQ(body.compare(at, 26, "http://www.w3.org/2000/svg"), 0) << name << ": " << body.substr(at, 40);
  }
  EXPECT_EQ(find_asset("console.html")->content_type, "text/html; charset=utf-8");
  EXPECT_FALSE(find_asset("../console.html"));
  EXPECT_EQ(std::string(find_asset("console.js")->body).find("innerHTML"), std::string::npos);
}

}  // namespace
}  // namespace easedge::proxy::console
