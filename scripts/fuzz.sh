#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, with clang 14 under ASan and UBSan, into build-asan/
# or $ASAN_BUILD_DIR, the build scripts/test-sanitizers.sh runs the tests in) and runs each
# for SECONDS (default 60), starting from its seed corpus in testdata/fuzz/<target>/. Fails
# when a target crashes, leaks, hits undefined behaviour, times out on one input or breaks
# one of its invariants; the input that did it is saved in build-asan/artifacts/<target>/
# (reproduce: build-asan/fuzz/fuzz_<target> FILE). New inputs found are kept in
# build-asan/corpus/<target>/, not in the repository.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 300 doc_parse
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
all_targets=(doc_parse csv_feed catalog_build server_request ledger_recover)
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")

scripts/setup.sh --fuzz
build_dir=${ASAN_BUILD_DIR:-build-asan}
jobs=$(nproc 2>/dev/null || echo 2)
# Configured exactly as scripts/test-sanitizers.sh does (a different configuration rebuilds it all).
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
    -DFLOWCTL_FUZZ=ON ${ASAN_CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$build_dir" -j"$jobs" --target fuzz

# Scratch files (the ledger target copies a data directory per input) on tmpfs when there is one.
if [[ -z "${TMPDIR:-}" && -d /dev/shm && -w /dev/shm ]]; then export TMPDIR=/dev/shm; fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for t in "${targets[@]}"; do
  corpus="$build_dir/corpus/$t"
  artifacts="$build_dir/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  log="$build_dir/fuzz-$t.log"
  echo "fuzz: $t for ${seconds}s (log: $log)" >&2
  # New inputs go to the first corpus directory; the seeds are read, never written.
  # -timeout: one input taking longer is a finding (a hang); -rss_limit_mb: so is memory.
  if "$build_dir/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=16384 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$corpus" "testdata/fuzz/$t" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "fuzz: $t passed: ${runs:-?} runs, ${cov:-cov: ?}, corpus $(find "$corpus" -type f | wc -l) files" >&2
  else
    echo "fuzz: $t FAILED; from its log:" >&2
    # The finding (a sanitizer report, a broken invariant, a timeout) and its first frames,
    # then the input that caused it.
    grep -m1 -A14 -E 'runtime error|ERROR: |invariant broken|ALARM|out-of-memory' "$log" | cut -c1-300 >&2 || true
    grep -A2 '^MS: ' "$log" | head -3 | cut -c1-300 >&2 || true
    ls -1 "$artifacts" | sed 's|^|fuzz:   artifact: '"$artifacts"'/|' >&2
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed (${seconds}s each)" >&2
