#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*_fuzz.cc) with clang-14, ASan and UBSan into build-fuzz, and runs
# each for a bounded time over its committed seeds plus a working corpus kept in build-fuzz.
# Usage: scripts/run-fuzzers.sh [--time SECONDS] [TARGET...]   (default: 60 s each, every target)
# Exit status: 0 when no target found a crash, leak or sanitizer error; 1 otherwise (artifacts in
# build-fuzz/fuzz-artifacts/); 2 for usage or build errors.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
seconds=60
targets=()
while (($#)); do
  case "$1" in
    --time) seconds="${2:?--time needs seconds}"; shift 2 ;;
    --time=*) seconds="${1#--time=}"; shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    -*) echo "run-fuzzers.sh: unknown option '$1'" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ((${#targets[@]} == 0)); then
  for source in "$root"/tests/fuzz/*_fuzz.cc; do targets+=("$(basename "$source" .cc)"); done
fi

command -v clang++-14 >/dev/null || { echo "run-fuzzers.sh: clang++-14 missing (scripts/install-deps.sh)" >&2; exit 2; }
# UBSan findings abort like ASan's, so libFuzzer records them as crashes instead of printing and going on.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DEASEDGE_FUZZ=ON -DEASEDGE_SANITIZE=ON -DCMAKE_CXX_FLAGS="-fno-sanitize-recover=all" >/dev/null \
  || exit 2
cmake --build "$build" --target "${targets[@]}" -j2 || exit 2

failed=()
for target in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$target"
  artifacts="$build/fuzz-artifacts"
  mkdir -p "$corpus" "$artifacts"
  args=(-max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts/$target-")
  [ -f "$root/tests/fuzz/$target.dict" ] && args+=(-dict="$root/tests/fuzz/$target.dict")
  seeds=()
  [ -d "$root/tests/fuzz/corpus/$target" ] && seeds+=("$root/tests/fuzz/corpus/$target")
  echo "run-fuzzers: $target for ${seconds}s"
  if ! "$build/tests/fuzz/$target" "${args[@]}" "$corpus" "${seeds[@]}"; then
    failed+=("$target")
  fi
done

if ((${#failed[@]})); then
  echo "run-fuzzers: FAILED: ${failed[*]} (reproducers in $build/fuzz-artifacts/)" >&2
  exit 1
fi
echo "run-fuzzers: ${#targets[@]} target(s) ran ${seconds}s each without findings"
