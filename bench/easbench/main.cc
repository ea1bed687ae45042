// easbench: plays enrolled ActiveSync devices against an mTLS edge on this machine and reports what it saw.
#include "bench/easbench/options.h"
#include "bench/easbench/runner.h"

#include <sys/resource.h>

#include <iostream>

int main(int argc, char** argv) {
  // Thousands of held Pings need thousands of descriptors: take the hard limit.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  auto parsed = easedge::bench::parse_options(argc, argv, std::cout, std::cerr);
  if (!parsed.options) return parsed.exit_code;
  return easedge::bench::run_benchmark(*parsed.options, std::cout, std::cerr);
}
