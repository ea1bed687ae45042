// ThreadMetrics hands out the process's labelled metrics: the same members Family::with() finds, rendered once.
#include "proxy/thread_metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace easedge::proxy {
namespace {

TEST(ThreadMetrics, HandsOutTheFamilysMembers) {
  MetricsRegistry registry;
  EasedgeMetrics metrics(registry);
  ThreadMetrics thread(metrics);
  thread.requests(200, eas::Command::sync).inc();
  thread.requests(200, eas::Command::sync).inc();
  thread.requests(403, std::nullopt).inc();
  thread.upstream_latency(eas::Command::ping).observe(0.2);
  EXPECT_EQ(&thread.requests(200, eas::Command::sync), &metrics.requests.with({"200", "Sync"}));
  EXPECT_EQ(metrics.requests.with({"200", "Sync"}).value(), 2u);
  EXPECT_EQ(metrics.requests.with({"403", "none"}).value(), 1u);
  EXPECT_NE(&thread.requests(200, eas::Command::ping), &thread.requests(200, eas::Command::sync));
  EXPECT_NE(&thread.requests(503, eas::Command::sync), &thread.requests(200, eas::Command::sync));
  EXPECT_EQ(&thread.upstream_latency(eas::Command::ping), &metrics.upstream_latency.with({"Ping"}));

  ThreadMetrics other(metrics);  // another I/O thread counts into the same series
  other.requests(200, eas::Command::sync).inc();
  EXPECT_EQ(metrics.requests.with({"200", "Sync"}).value(), 3u);
  auto text = registry.render();
  EXPECT_NE(text.find("easedge_requests_total{status=\"200\",command=\"Sync\"} 3"), std::string::npos) << text;
}

}  // namespace
}  // namespace easedge::proxy
