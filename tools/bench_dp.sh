#!/usr/bin/env bash
# bench_dp.sh: data-parallel scaling on this machine: the quickstart model trained for
# N steps on 1 and on 2 ranks in one go; prints tokens/s, ms/step and the exposed
# communication per step (the gradient all-reduce plus loss statistics, measured by the
# trainer; not overlapped with backward yet) from each run's metrics.jsonl.
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
common=(--set "train.steps=$STEPS" --set train.log_every=1 --set train.eval_every=0)
OPENBLAS_NUM_THREADS=2 "$LOCALIST" train "$CONFIG" "${common[@]}" --set "run.dir=$out/r1" >/dev/null 2>&1
OPENBLAS_NUM_THREADS=1 mpirun -np 2 --oversubscribe "$LOCALIST" train "$CONFIG" "${common[@]}" \
  --set "run.dir=$out/r2" >/dev/null 2>&1
python3 - "$out" "$STEPS" <<'PY'
import json, statistics, sys
out, steps = sys.argv[1], int(sys.argv[2])
res = {}
for n in (1, 2):
    rows = [json.loads(l) for l in open(f"{out}/r{n}/metrics.jsonl") if '"event":"step"' in l][5:]  # skip warm-up
    ms = statistics.median(r["ms_per_step"] for r in rows)
    comm = statistics.median(r.get("comm_ms", 0.0) for r in rows)
    tps = statistics.median(r["tokens_per_s"] for r in rows)
    res[n] = tps
    print(f"{n} rank(s): {tps:,.0f} tokens/s, {ms:.1f} ms/step, exposed communication {comm:.2f} ms/step "
          f"({100 * comm / ms:.1f}% of the step)")
grad_bytes = 4 * 580096
print(f"speed-up 2 ranks / 1 rank: {res[2] / res[1]:.2f}x; gradient bucket {grad_bytes / 1e6:.2f} MB per step; "
      f"ring all-reduce minimum at 2 ranks: 2(N-1)/N x {grad_bytes / 1e6:.2f} MB = {grad_bytes / 1e6:.2f} MB per rank")
PY
rm -rf "$out"
