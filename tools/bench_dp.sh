#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_dp.sh: data-parallel scaling on this machine, all runs in one invocation: the
# quickstart model trained for N steps on 1 rank, on 2 ranks with the gradient
# all-reduce overlapped with backward (default buckets), and on 2 ranks with one bucket
# started after backward (no overlap, the baseline). Prints tokens/s, ms/step, exposed
# communication per step (measured by the trainer) and bytes sent per step against the
# ring all-reduce minimum 2(N-1)/N x gradient bytes. Bytes are counted by OpenMPI's pml
# monitoring (per-rank profiles written at exit); start-up traffic cancels out by taking
# the difference between an N-step and an N/2-step run.
# Usage: tools/bench_dp.sh [build_dir] [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
STEPS=${2:-100}
LOCALIST="$BUILD_DIR/localist"
CONFIG=configs/quickstart.yaml
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=1
"$LOCALIST" prepare "$CONFIG" >/dev/null 2>&1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(--set "train.steps=$STEPS" --set train.log_every=1 --set train.eval_every=0)
mpi=(mpirun -np 2 --oversubscribe)
monitor() { echo --mca pml_monitoring_enable 1 --mca pml_monitoring_enable_output 3 --mca pml_monitoring_filename "$1"; }
OMP_NUM_THREADS=2 "$LOCALIST" train "$CONFIG" "${common[@]}" --set "run.dir=$out/r1" >/dev/null 2>&1
OMP_NUM_THREADS=1 "${mpi[@]}" $(monitor "$out/full") "$LOCALIST" train "$CONFIG" "${common[@]}" \
  --set "run.dir=$out/r2" >/dev/null 2>&1
OMP_NUM_THREADS=1 "${mpi[@]}" $(monitor "$out/half") "$LOCALIST" train "$CONFIG" "${common[@]}" \
  --set "train.steps=$((STEPS / 2))" --set "run.dir=$out/r2half" >/dev/null 2>&1
OMP_NUM_THREADS=1 "${mpi[@]}" "$LOCALIST" train "$CONFIG" "${common[@]}" --set "run.dir=$out/r2one" \
  --set distributed.bucket_mb=4096 >/dev/null 2>&1
grep -h "gradient sync:" "$out/r2/logs/rank-0.log" | sed 's/^.*gradient sync/gradient sync/'
python3 - "$out" "$STEPS" <<'PY'
import json, re, statistics, sys
out, steps = sys.argv[1], int(sys.argv[2])
def sent(prefix, rank):  # bytes rank sent, point to point (collectives' messages included)
    return sum(int(l.split("\t")[3].split()[0]) for l in open(f"{prefix}.{rank}.prof") if l.startswith("E\t"))
log = open(f"{out}/r2/logs/rank-0.log").read()
grad_mb = float(re.search(r"([0-9.]+) MB per step", log).group(1))
res = {}
for name, label in (("r1", "1 rank"), ("r2", "2 ranks, overlapped buckets"), ("r2one", "2 ranks, one bucket after backward")):
    rows = [json.loads(l) for l in open(f"{out}/{name}/metrics.jsonl") if '"event":"step"' in l][5:]  # skip warm-up
    ms = statistics.median(r["ms_per_step"] for r in rows)
    comm = statistics.median(r.get("comm_ms", 0.0) for r in rows)
    tps = statistics.median(r["tokens_per_s"] for r in rows)
    res[name] = (tps, comm, ms)
    line = (f"{label}: {tps:,.0f} tokens/s, {ms:.1f} ms/step, exposed communication {comm:.2f} ms/step "
            f"({100 * comm / ms:.1f}% of the step)")
    print(line)
for rank in (0, 1):
    per = (sent(f"{out}/full", rank) - sent(f"{out}/half", rank)) / (steps - steps // 2) / 1e6
    print(f"rank {rank} sent {per:.4f} MB/step = {per / grad_mb:.4f} x the ring all-reduce minimum "
          f"2(N-1)/N x {grad_mb:.2f} MB = {grad_mb:.2f} MB at N = 2")
print(f"speed-up 2 ranks / 1 rank: {res['r2'][0] / res['r1'][0]:.2f}x (overlapped), "
      f"{res['r2one'][0] / res['r1'][0]:.2f}x (one bucket)")
PY
