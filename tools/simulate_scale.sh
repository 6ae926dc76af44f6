#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# simulate_scale.sh: the pool of tests/run/test_simulated_scale.cpp (4 LLMs, bp 4, ZeRO-1,
# two steps) on worlds of N ranks that are threads of one process, for each N given
# (multiples of 4; default 64 256 1024): pass/fail, the training time and the process's
# peak memory. CI runs 64; this is how the larger worlds in docs/results.md were measured.
# Usage: tools/simulate_scale.sh [build_dir] [N ...]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
shift || true
WORLDS=("$@")
[ ${#WORLDS[@]} -gt 0 ] || WORLDS=(64 256 1024)
TESTS="$BUILD_DIR/tests/localist_model_tests"
[ -x "$TESTS" ] || { echo "simulate_scale.sh: $TESTS not built (cmake --build $BUILD_DIR)" >&2; exit 2; }
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 LOCALIST_SOURCE_DIR="$PWD"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
printf '%-8s %-6s %-12s %-12s %s\n' ranks result train_s peak_rss_GB loss_rel_diff
status=0
for n in "${WORLDS[@]}"; do
  result=ok
  LOCALIST_SIMULATED_RANKS=$n "$TESTS" --gtest_filter='SimulatedScale.*' >"$log" 2>&1 ||
    { result=FAILED; status=1; }
  secs=$(sed -n 's/.* ranks in one process: trained in \([0-9.]*\) s.*/\1/p' "$log")
  gb=$(sed -n 's/.* ranks in one process: .*peak RSS \([0-9.]*\) GB.*/\1/p' "$log")
  diff=$(sed -n 's/.*largest relative loss difference from one rank: //p' "$log")
  printf '%-8s %-6s %-12s %-12s %s\n' "$n" "$result" "${secs:-?}" "${gb:-?}" "${diff:-?}"
  [ "$result" = ok ] || tail -20 "$log" >&2
done
exit $status
