// The result of an easbench run and its two renderings: the stdout table and the --json file.
#pragma once

#include "bench/easbench/latency.h"

#include <cstdint>
#include <map>
#include <ostream>
#include <string>

namespace easedge::bench {

struct RunResult {
  std::string scenario;
  std::uint32_t connections = 0;
  double duration_s = 0;
  std::uint64_t requests = 0;  // requests that reached an outcome: ok + errors
  std::uint64_t ok = 0;        // 2xx responses read completely
  std::uint64_t errors = 0;    // non-2xx responses + transport failures
  std::map<int, std::uint64_t> status_counts;
  std::uint64_t handshakes = 0;
  LatencySummary latency;

  // Table only (the JSON field set is a fixed contract).
  std::map<std::string, std::uint64_t> transport_errors;  // connect, tls, timeout, io, http
  std::uint64_t aborted = 0;        // in flight when the run ended or cut by a reconnect storm: not counted
  std::int64_t peak_held_pings = 0;
  bool resume = false;                  // --resume: the two counts below are shown
  std::uint64_t resumed_handshakes = 0; // handshakes that resumed a session from a ticket
  std::uint64_t resume_missed = 0;      // full handshakes of devices that had connected before
  double cpu_user_s = 0;            // easbench's own CPU during the load phase
  double cpu_sys_s = 0;
  unsigned threads = 0;

  double rate_per_s() const { return duration_s > 0 ? static_cast<double>(requests) / duration_s : 0; }
  double handshake_rate_per_s() const { return duration_s > 0 ? static_cast<double>(handshakes) / duration_s : 0; }
};

void write_table(const RunResult& r, std::ostream& out);
void write_json(const RunResult& r, std::ostream& out);

}  // namespace easedge::bench
