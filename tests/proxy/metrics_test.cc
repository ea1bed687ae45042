#include "proxy/metrics.h"

#include "auth/revocation/revocation_checker.h"
#include "config/version.h"
#include "tests/auth/revocation/test_pki.h"

#include <gtest/gtest.h>

#include <thread>

namespace easedge::proxy {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(MetricsRegistry, RendersCountersAndGaugesInTextFormat) {
  MetricsRegistry registry;
  auto& c = registry.counter("t_events_total", "Events.");
  auto& g = registry.gauge("t_open", "Open things.");
  c.inc();
  c.inc(4);
  g.inc();
  g.inc();
  g.dec();
  EXPECT_EQ(registry.render(),
            "# HELP t_events_total Events.\n# TYPE t_events_total counter\nt_events_total 5\n"
            "# HELP t_open Open things.\n# TYPE t_open gauge\nt_open 1\n");
}

TEST(MetricsRegistry, FamiliesKeepOneSeriesPerLabelSetAndEscapeValues) {
  MetricsRegistry registry;
  auto& family = registry.counter_family("t_requests_total", "Requests.", {"status", "command"});
  auto& ok_sync = family.with({"200", "Sync"});
  ok_sync.inc();
  family.with({"200", "Sync"}).inc();  // same member
  EXPECT_EQ(&family.with({"200", "Sync"}), &ok_sync);
  family.with({"403", "we\"ird\\\n"}).inc();
  auto text = registry.render();
  EXPECT_TRUE(contains(text, "t_requests_total{status=\"200\",command=\"Sync\"} 2\n")) << text;
  EXPECT_TRUE(contains(text, "t_requests_total{status=\"403\",command=\"we\\\"ird\\\\\\n\"} 1\n")) << text;
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithInf) {
  MetricsRegistry registry;
  auto& h = registry.histogram("t_latency_seconds", "Latency.", {0.1, 1});
  h.observe(0.05);
  h.observe(0.1);  // le is inclusive
  h.observe(0.5);
  h.observe(7);
  EXPECT_EQ(registry.render(),
            "# HELP t_latency_seconds Latency.\n# TYPE t_latency_seconds histogram\n"
            "t_latency_seconds_bucket{le=\"0.1\"} 2\n"
            "t_latency_seconds_bucket{le=\"1\"} 3\n"
            "t_latency_seconds_bucket{le=\"+Inf\"} 4\n"
            "t_latency_seconds_sum 7.65\n"
            "t_latency_seconds_count 4\n");
}

TEST(MetricsRegistry, HistogramFamilyCarriesLabelsBeforeLe) {
  MetricsRegistry registry;
  registry.histogram_family("t_h", "H.", {"command"}, {1}).with({"Ping"}).observe(2);
  auto text = registry.render();
  EXPECT_TRUE(contains(text, "t_h_bucket{command=\"Ping\",le=\"1\"} 0\n")) << text;
  EXPECT_TRUE(contains(text, "t_h_bucket{command=\"Ping\",le=\"+Inf\"} 1\n")) << text;
  EXPECT_TRUE(contains(text, "t_h_count{command=\"Ping\"} 1\n")) << text;
}

TEST(MetricsRegistry, CollectorsAddScrapeTimeSamples) {
  MetricsRegistry registry;
  int scrapes = 0;
  registry.add_collector([&scrapes](SampleWriter& out) {
    out.header("t_scrapes", "Scrapes.", "gauge");
    out.sample("t_scrapes", {{"who", "test"}}, ++scrapes);
  });
  registry.render();
  EXPECT_TRUE(contains(registry.render(), "t_scrapes{who=\"test\"} 2\n"));
}

TEST(MetricsRegistry, ConcurrentUpdatesAreAllCounted) {
  MetricsRegistry registry;
  auto& c = registry.counter("t_total", "T.");
  auto& family = registry.counter_family("t_by_total", "T.", {"k"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        family.with({i % 2 ? "odd" : "even"}).inc();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000u);
  EXPECT_EQ(family.with({"odd"}).value(), 20000u);
}

// I/O threads write shards of their own (more threads than shards share one); every update is in the sums,
// and a count may go down on another shard than the one it went up on.
TEST(MetricsRegistry, ShardedCountsAddUpAcrossIoThreads) {
  MetricsRegistry registry;
  auto& c = registry.counter("s_total", "S.");
  auto& h = registry.histogram("s_seconds", "S.", {0.1, 1});
  ShardedCount active;
  std::vector<std::thread> threads;
  const std::size_t io_threads = count_shards + 2;
  for (std::size_t t = 0; t < io_threads; ++t)
    threads.emplace_back([&, t] {
      set_io_thread_shard(t);
      for (int i = 0; i < 1000; ++i) {
        c.inc();
        h.observe(i % 2 ? 0.5 : 2.0);
        active.add(1);
      }
    });
  for (auto& t : threads) t.join();
  active.sub(1000 * io_threads);  // this thread's shard (0) goes below zero: the sum stays right
  EXPECT_EQ(c.value(), 1000u * io_threads);
  EXPECT_EQ(h.bucket_counts(), (std::vector<std::uint64_t>{0, 500u * io_threads, 500u * io_threads}));
  EXPECT_DOUBLE_EQ(h.sum(), (0.5 + 2.0) * 500 * io_threads);
  EXPECT_EQ(active.sum(), 0u);
}

// A histogram with more buckets than one cache line holds keeps each bucket apart.
TEST(MetricsRegistry, HistogramBucketsSpanSeveralCacheLines) {
  Histogram h({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17});
  for (int v = 1; v <= 18; ++v) h.observe(v);
  EXPECT_EQ(h.bucket_counts(), std::vector<std::uint64_t>(18, 1));
}

TEST(EasedgeMetrics, RegistersTheDocumentedNames) {
  MetricsRegistry registry;
  EasedgeMetrics metrics(registry);
  metrics.requests.with({"200", "Ping"}).inc();
  metrics.refusals.with({"certificate_revoked"}).inc();
  metrics.upstream_latency.with({"Ping"}).observe(0.2);
  metrics.connections_open.inc();
  auto text = registry.render();
  for (const char* name :
       {"easedge_requests_total{status=\"200\",command=\"Ping\"} 1", "easedge_refusals_total{reason=\"certificate_revoked\"} 1",
        "easedge_upstream_response_seconds_bucket{command=\"Ping\",le=\"0.25\"} 1", "easedge_connections_open 1",
        "easedge_requests_held 0", 
        "# TYPE easedge_tls_handshakes_total counter", "easedge_config_reloads_total 0"})
    EXPECT_TRUE(contains(text, name)) << name << "\n" << text;
  EXPECT_TRUE(contains(text, std::string("easedge_build_info{version=\"") + version_string + "\"} 1\n")) << text;
}

TEST(EasedgeMetrics, RevocationDataIsExposedPerCrl) {
  auth::testing::TempDir dir;
  auth::testing::TestCa ca("Metrics CA");
  config::TlsConfig tls;
  tls.client_ca = dir.write("ca.pem", ca.cert_pem());
  tls.crl = {dir.write("ca.crl", ca.crl_pem({.revoked = {{1}, {2}}}))};
  std::shared_ptr<const auth::RevocationChecker> checker = auth::RevocationChecker::create(tls);

  MetricsRegistry registry;
  EasedgeMetrics metrics(registry);
  metrics.watch_revocation([&checker] { return checker; });
  auto text = registry.render();
  const std::string labels = "{issuer=\"CN=Metrics CA\",source=\"" + tls.crl[0].string() + "\",delta=\"false\"}";
  EXPECT_TRUE(contains(text, "easedge_crl_entries" + labels + " 2\n")) << text;
  auto at = text.find("easedge_crl_next_update_seconds" + labels + " ");
  ASSERT_NE(at, std::string::npos) << text;
  const double left = std::stod(text.substr(at + std::string("easedge_crl_next_update_seconds").size() + labels.size() + 1));
  EXPECT_GT(left, 23 * 3600.0);
  EXPECT_LE(left, 24 * 3600.0);
  EXPECT_TRUE(contains(text, "easedge_crl_loads_total 1\n")) << text;
  EXPECT_TRUE(contains(text, "easedge_ocsp_cache_hits_total 0\n")) << text;
}

}  // namespace
}  // namespace easedge::proxy
