#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: installs packages, builds, runs ctest.
# Usage: scripts/test.sh            (what .ci/run calls)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${EASEDGE_TEST_BUILD:-$ROOT/build-test}

bash scripts/install-deps.sh --with-samba --with-bench --with-packaging --with-browser --with-sogo
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEASEDGE_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
if [ -x scripts/run-fuzzers.sh ]; then
  bash scripts/run-fuzzers.sh --time "${EASEDGE_FUZZ_SECONDS:-30}"
fi
cd "$BUILD"
ctest --output-on-failure --timeout 900 -j"${EASEDGE_CTEST_JOBS:-2}"
