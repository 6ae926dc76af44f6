#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_recruitment.sh: what block recruitment costs, in one invocation: configs/recruitment.yaml
# trained at the default interval (100) and at 50, and without recruitment (the baseline).
# Prints the trainer's own accounting (probe statistics, decisions and restores as a share
# of wall time; trial steps apart, since they are training) and each run's wall time
# against the baseline's. Usage: tools/bench_recruitment.sh [build_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
LOCALIST="$BUILD_DIR/localist"
CONFIG=configs/recruitment.yaml
export OMP_NUM_THREADS=1
"$LOCALIST" prepare "$CONFIG" >/dev/null 2>&1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
wall() { sed -n 's/^trained .* steps in \([0-9.]*\) s.*/\1/p' "$1"; }
"$LOCALIST" train "$CONFIG" --set "run.dir=$out/off" --set recruitment.enabled=false >"$out/off.txt" 2>&1
base=$(wall "$out/off.txt")
echo "no recruitment: $base s"
for interval in 100 50; do
  "$LOCALIST" train "$CONFIG" --set "run.dir=$out/i$interval" --set "recruitment.interval=$interval" >"$out/i$interval.txt" 2>&1
  t=$(wall "$out/i$interval.txt")
  echo "interval $interval: $t s ($(python3 -c "print(f'{$t / $base:.2f}')")x the baseline); $(grep -ho 'recruitment time: .*' "$out/i$interval/logs/rank-0.log")"
done
