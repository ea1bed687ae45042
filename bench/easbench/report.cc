#include "bench/easbench/report.h"

#include <cstdio>
#include <string>

namespace easedge::bench {

namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void row(std::ostream& out, const std::string& name, const std::string& value) {
  out << "  " << name << std::string(name.size() < 26 ? 26 - name.size() : 1, ' ') << value << "\n";
}

}  // namespace

void write_table(const RunResult& r, std::ostream& out) {
  out << "easbench " << r.scenario << ": " << r.connections << " connections, " << r.threads << " threads\n";
  row(out, "duration_s", fixed(r.duration_s, 3));
  row(out, "requests", std::to_string(r.requests));
  row(out, "ok", std::to_string(r.ok));
  row(out, "errors", std::to_string(r.errors));
  std::string statuses;
  for (const auto& [code, n] : r.status_counts) {
    if (!statuses.empty()) statuses += ' ';
    statuses.append(std::to_string(code)).append(":").append(std::to_string(n));
  }
  row(out, "status_counts", statuses.empty() ? "-" : statuses);
  std::string transport;
  for (const auto& [kind, n] : r.transport_errors) {
    if (n == 0) continue;
    if (!transport.empty()) transport += ' ';
    transport.append(kind).append(":").append(std::to_string(n));
  }
  row(out, "transport_errors", transport.empty() ? "-" : transport);
  row(out, "aborted (not counted)", std::to_string(r.aborted));
  row(out, "rate_per_s", fixed(r.rate_per_s(), 1));
  row(out, "handshakes", std::to_string(r.handshakes));
  row(out, "handshake_rate_per_s", fixed(r.handshake_rate_per_s(), 1));
  if (r.resume) {
    row(out, "handshakes_resumed", std::to_string(r.resumed_handshakes));
    row(out, "handshakes_full", std::to_string(r.handshakes - r.resumed_handshakes));
    row(out, "resume_missed", std::to_string(r.resume_missed));
  }
  row(out, "latency_ms p50", fixed(r.latency.p50_ms, 3));
  row(out, "latency_ms p90", fixed(r.latency.p90_ms, 3));
  row(out, "latency_ms p99", fixed(r.latency.p99_ms, 3));
  row(out, "latency_ms max", fixed(r.latency.max_ms, 3));
  row(out, "peak_held_pings", std::to_string(r.peak_held_pings));
  const double cpu = r.cpu_user_s + r.cpu_sys_s;
  row(out, "easbench_cpu_s", fixed(cpu, 3) + " (user " + fixed(r.cpu_user_s, 3) + ", sys " + fixed(r.cpu_sys_s, 3) +
                                 ", " + fixed(r.duration_s > 0 ? 100.0 * cpu / r.duration_s : 0, 0) + "% of one core)");
}

void write_json(const RunResult& r, std::ostream& out) {
  out << "{\"scenario\":\"" << r.scenario << "\",\"connections\":" << r.connections
      << ",\"duration_s\":" << fixed(r.duration_s, 3) << ",\"requests\":" << r.requests << ",\"ok\":" << r.ok
      << ",\"errors\":" << r.errors << ",\"status_counts\":{";
  bool first = true;
  for (const auto& [code, n] : r.status_counts) {
    out << (first ? "" : ",") << "\"" << code << "\":" << n;
    first = false;
  }
  out << "},\"rate_per_s\":" << fixed(r.rate_per_s(), 3) << ",\"handshakes\":" << r.handshakes
      << ",\"handshake_rate_per_s\":" << fixed(r.handshake_rate_per_s(), 3) << ",\"latency_ms\":{\"p50\":"
      << fixed(r.latency.p50_ms, 3) << ",\"p90\":" << fixed(r.latency.p90_ms, 3) << ",\"p99\":"
      << fixed(r.latency.p99_ms, 3) << ",\"max\":" << fixed(r.latency.max_ms, 3) << "}}\n";
}

}  // namespace easedge::bench
