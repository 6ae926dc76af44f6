#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fuzz.sh: runs one libFuzzer harness of tests/fuzz for a while and prints its figures.
# Usage: tools/fuzz.sh TARGET SECONDS   (TARGET: config dial rules index tensor_file shard bpe hf_source spm, or all)
# FUZZ_RUNS=N stops a run after N executions (or SECONDS, whichever comes first).
# Builds build-fuzz/ with clang, libFuzzer, ASan and UBSan (every library instrumented;
# LOCALIST_FUZZ=ON), fuzzes from the committed corpus tests/fuzz/corpus/TARGET into a
# working corpus build-fuzz/fuzz-corpus/TARGET, and leaves any crashing input in
# build-fuzz/fuzz-crashes/. A crash becomes a regression test by copying its input into
# tests/fuzz/corpus/TARGET/ (the CI replay runs every file there). Limits: one job per
# target (2 cores here); LibTorch and HDF5 themselves are not instrumented.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: tools/fuzz.sh TARGET SECONDS}
seconds=${2:?usage: tools/fuzz.sh TARGET SECONDS}
build=${LOCALIST_FUZZ_BUILD:-build-fuzz}
all=(config dial rules index tensor_file shard bpe hf_source spm)
if [ "$target" = all ]; then targets=("${all[@]}"); else targets=("$target"); fi
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is needed (apt install clang libclang-rt-14-dev)"; exit 2; }
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOCALIST_FUZZ=ON \
    -DLOCALIST_BUILD_BENCH=OFF >/dev/null
fi
cmake --build "$build" -j "${JOBS:-2}" --target "${targets[@]/#/fuzz_}"
mkdir -p "$build/fuzz-crashes"
export OMP_NUM_THREADS=1
# LibTorch and HDF5 are not instrumented: container-overflow checks would misfire across
# the boundary; leaks at exit of their static state are not ours.
# allocator_may_return_null: a huge allocation fails as malloc would (libhdf5 checks for NULL).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_container_overflow=0:detect_leaks=0:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$t"
  mkdir -p "$corpus"
  log="$build/fuzz-$t.log"
  set +e
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
    -max_len=65536 -artifact_prefix="$build/fuzz-crashes/$t-" "$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
  units=$(ls "$corpus" | wc -l)
  if [ $rc -eq 0 ]; then verdict="no crash, leak or hang"; else verdict="FAILED (exit $rc; see $log and $build/fuzz-crashes/)"; status=1; fi
  printf 'fuzz %-12s %6ss: %10s executions (%s/s), %s, corpus %s inputs: %s\n' "$t" "$seconds" "$execs" "$speed" \
    "${cov:-cov: ?}" "$units" "$verdict"
done
exit $status
