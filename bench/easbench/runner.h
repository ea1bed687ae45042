// Runs an easbench load: identities, preflight, I/O threads with one io_context each, progress, result.
#pragma once

#include "bench/easbench/options.h"

#include <ostream>

namespace easedge::bench {

// Runs the whole benchmark described by `options`; the table goes to `out`, progress and problems to
// `err`. Returns the process exit code: 0 when the run completed (errors are part of the result),
// 1 when it could not start (unreadable identity files, server unreachable, TLS refused), kExitNotResumed
// when --resume was asked for and a device's connection after its first was a full handshake.
inline constexpr int kExitNotResumed = 3;
int run_benchmark(const Options& options, std::ostream& out, std::ostream& err);

}  // namespace easedge::bench
