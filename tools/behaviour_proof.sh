#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# behaviour_proof.sh: the proof that a refactor changed no behaviour. Trains the seven
# runs of the restructure issue (#33) with train.log_every 1 and writes, per run, every
# step's loss (as printed, all digits) and every recruitment and spawn decision (timings
# dropped) to OUT; a second snapshot after the change must be byte-identical (diff).
#   tools/behaviour_proof.sh [BUILD] OUT     e.g. build /tmp/before.txt, then diff
# Limits: ~10 minutes on 2 cores; CPU only; needs the corpora of tools/pool_corpora.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${2:+$1}; BUILD=${BUILD:-build}
OUT=${2:-${1:?usage: behaviour_proof.sh [BUILD] OUT}}
L="$BUILD/localist"
[ -x "$L" ] || { echo "behaviour_proof: $L not built (make build)" >&2; exit 1; }
bash tools/pool_corpora.sh >/dev/null
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=1 OMPI_MCA_mpi_yield_when_idle=1
WORK=$(mktemp -d /tmp/behaviour_proof.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
: >"$OUT.partial"

# run NAME RANKS CONFIG [--set k=v ...]: one training run into $WORK/NAME, its record appended.
run() {
  local name=$1 np=$2 config=$3
  shift 3
  local sets=(--set "run.dir=$WORK/$name" --set train.log_every=1 "$@")
  "$L" prepare "$config" >/dev/null
  mpirun -np "$np" --oversubscribe "$L" train "$config" "${sets[@]}" >"$WORK/$name.log" 2>&1 ||
    { echo "behaviour_proof: run $name failed (log: $WORK/$name.log)" >&2; tail -5 "$WORK/$name.log" >&2; exit 1; }
  {
    echo "== $name: $np ranks, $config $*"
    python3 - "$WORK/$name" <<'EOF'
import glob, json, os, sys
# Every metrics file of the run (the pool writes one per LLM), in a stable order.
for path in sorted(glob.glob(os.path.join(sys.argv[1], "**", "metrics.jsonl"), recursive=True)):
    print("--", os.path.relpath(path, sys.argv[1]))
    for line in open(path):
        e = json.loads(line)
        ev = e.get("event")
        if ev == "step":
            print("step", e["step"], repr(e["loss"]))
        elif ev in ("recruitment", "pool_recruitment"):
            # The decision and its bits; wall-clock fields differ run to run.
            print(ev, json.dumps({k: v for k, v in e.items() if not any(t in k for t in ("time", "seconds", "_ms", "_s"))},
                                 sort_keys=True))
EOF
  } >>"$OUT.partial"
  echo "behaviour_proof: $name done" >&2
}

run quickstart-1 1 configs/quickstart.yaml
run quickstart-2 2 configs/quickstart.yaml
run quickstart-bp2 2 configs/quickstart.yaml --set distributed.block_parallel=2
run quickstart-zero 2 configs/quickstart.yaml --set distributed.zero=1
run recruitment-2 2 configs/recruitment.yaml
run pool-2 2 configs/pool.yaml
run specialists-1 1 configs/specialists.yaml
mv "$OUT.partial" "$OUT"
echo "behaviour_proof: $(grep -c '^step' "$OUT") step losses, $(grep -c 'recruitment {' "$OUT") decisions in $OUT"
