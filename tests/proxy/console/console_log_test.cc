#include "proxy/console/console_log.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace easedge::proxy::console {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

RequestFacts refusal(int n, Clock::time_point time = std::chrono::system_clock::now()) {
  static thread_local std::string id;
  id = "req-" + std::to_string(n);
  return {.time = time, .client_address = "192.0.2.7", .subject = "CN=WorkspaceONEUEM.revoked",
          .cert_sha256 = "ab", .user = "", .device_id = "DEV1", .device_type = "iPhone", .command = "Sync",
          .status = 403, .substatus = 13, .refusal = "certificate_revoked", .detail = "serial 1A revoked",
          .request_id = id};
}

TEST(ConsoleLog, RingKeepsTheNewestUpToItsCapacity) {
  ConsoleLog log(5);
  for (int i = 0; i < 12; ++i) log.record(refusal(i));
  auto rows = log.refusals();
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows.front().request_id, "req-11");
  EXPECT_EQ(rows.back().request_id, "req-7");
  EXPECT_EQ(rows.front().subject, "CN=WorkspaceONEUEM.revoked");
  EXPECT_EQ(status_class(rows.front().status, rows.front().substatus), "403.13");
}

TEST(ConsoleLog, DefaultRingHoldsAThousandRefusals) {
  ConsoleLog log;
  for (int i = 0; i < 1500; ++i) log.record(refusal(i));
  auto rows = log.refusals();
  ASSERT_EQ(rows.size(), 1000u);
  EXPECT_EQ(rows.front().request_id, "req-1499");
  EXPECT_EQ(rows.back().request_id, "req-500");
}

TEST(ConsoleLog, AnsweredRequestsCountAsActivityButNotAsRefusals) {
  ConsoleLog log;
  auto facts = refusal(0);
  facts.refusal = {};
  facts.status = 200;
  facts.substatus = 0;
  facts.user = "alice@corp.example.test";
  for (int i = 0; i < 3; ++i) log.record(facts);
  facts.device_id = "DEV2";
  facts.user = "bob@corp.example.test";
  log.record(facts);
  log.record(refusal(9));
  EXPECT_EQ(log.refusals().size(), 1u);
  auto devices = log.top_devices(10);
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].key, "DEV1");
  EXPECT_EQ(devices[0].requests, 4u);
  EXPECT_EQ(devices[0].refused, 1u);
  EXPECT_EQ(devices[0].detail, "iPhone");
  auto users = log.top_users(1);
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0].key, "alice@corp.example.test");
  EXPECT_EQ(users[0].requests, 3u);
}

TEST(ConsoleLog, ActivityTablesAreBounded) {
  ConsoleLog log(10, 3);
  auto facts = refusal(0);
  facts.refusal = {};
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back("DEV" + std::to_string(i));
  for (const auto& id : ids) {
    facts.device_id = id;
    log.record(facts);
  }
  EXPECT_EQ(log.top_devices(10).size(), 3u);
  EXPECT_EQ(log.untracked(), 2u);
}

TEST(ConsoleLog, ADeviceSeenOnSeveralThreadsIsOneRowWithTheirCountsAdded) {
  ConsoleLog log(10, 3);
  const auto start = Clock::now();
  auto facts = refusal(0, start);
  facts.refusal = {};
  facts.user = "alice@corp.example.test";
  facts.device_type = "iPhone";
  log.record(facts, 0);
  facts.time = start + 1s;
  facts.device_type = "iPad";  // the newest sighting's type is shown
  log.record(facts, 1);
  facts.time = start - 1s;
  facts.device_type = "older";
  log.record(facts, 2);
  auto devices = log.top_devices(10);
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].requests, 3u);
  EXPECT_EQ(devices[0].detail, "iPad");
  EXPECT_EQ(devices[0].last_seen, start + 1s);
  auto users = log.top_users(10);
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0].requests, 3u);
  // The bound is per thread: three more devices on another thread are tracked.
  for (const char* id : {"A", "B", "C", "D"}) {
    facts.device_id = id;
    log.record(facts, 5);
  }
  EXPECT_EQ(log.top_devices(10).size(), 4u);
  EXPECT_EQ(log.untracked(), 1u) << "D";
}

TEST(ConsoleLog, ActivityOlderThanAnHourIsForgotten) {
  ConsoleLog log;
  const auto start = Clock::now();
  auto facts = refusal(0, start);
  facts.refusal = {};
  log.record(facts);
  facts.device_id = "LATER";
  facts.time = start + 31min;
  log.record(facts);
  EXPECT_EQ(log.top_devices(10).size(), 2u);  // previous generation still shown
  facts.time = start + 95min;
  log.record(facts);
  auto devices = log.top_devices(10);
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].key, "LATER");
}

TEST(ConsoleLog, RefusalsPerMinuteCoverTheLastHour) {
  ConsoleLog log;
  const auto now = std::chrono::floor<std::chrono::minutes>(Clock::now()) + 30s;
  log.record(refusal(0, now - 90min));
  log.record(refusal(1, now - 5min));
  log.record(refusal(2, now - 5min));
  auto other = refusal(3, now);
  other.status = 413;
  other.substatus = 0;
  log.record(other);
  auto minutes = log.refusals_per_minute(now);
  ASSERT_EQ(minutes.size(), 2u);
  EXPECT_EQ(minutes[0].by_class.at("403.13"), 2u);
  EXPECT_EQ(minutes[1].by_class.at("413"), 1u);
}

TEST(ConsoleLog, ManyThreadsRecordAtOnce) {
  ConsoleLog log(100);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&log, t] {
      for (int i = 0; i < 2000; ++i) {
        auto facts = refusal(t * 10000 + i);
        if (i % 2) facts.refusal = {};
        log.record(facts);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(log.refusals().size(), 100u);
  auto devices = log.top_devices(1);
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].requests, 8000u);
  EXPECT_EQ(devices[0].refused, 4000u);
}

}  // namespace
}  // namespace easedge::proxy::console
