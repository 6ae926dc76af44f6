#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_pool.sh: a pool of 2 LLMs (main and a specialist branched at step 0, equal
# batches) trained on 2 ranks, one LLM each, against the same pool sharing 1 rank, in
# one invocation. Prints per LLM the tokens/s (its batch × context over the global step
# time) and the control plane's time per step (the boundary all-reduce and the record
# relay: the last rank to arrive; with waiting: the first) as a share of the step; and
# the same for main alone, data parallel on 2 ranks (no waiting: the control plane's cost).
# Usage: tools/bench_pool.sh [build_dir] [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
STEPS=${2:-60}
LOCALIST="$BUILD_DIR/localist"
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cat > "$out/bench.yaml" <<YAML
run: {dir: $out/r}
data:
  shard_dir: shards/byte
  sources:
    - {name: wikitext-valid, path: corpora/wikitext2-valid.txt, domain: encyclopedia, split: wikitext}
    - {name: shakespeare, path: corpora/tinyshakespeare.txt, domain: drama, split: blank_line}
model: {d_model: 64, n_layers: 2, context: 64, head_dim: 16, k_initial: 4, k_max: 8}
train: {steps: $STEPS, global_batch: 16, micro_batch: 8, eval_every: 0, log_every: 10, checkpoint_every: 0}
pool:
  llms:
    - {name: drama, domains: [drama], branch_from: main, branch_step: 0}
YAML
"$LOCALIST" prepare "$out/bench.yaml" >/dev/null 2>&1
mpirun -np 2 --oversubscribe "$LOCALIST" train "$out/bench.yaml" --set "run.dir=$out/two" >/dev/null 2>&1
"$LOCALIST" train "$out/bench.yaml" --set "run.dir=$out/one" >/dev/null 2>&1
# Main alone, data parallel on 2 ranks: the ranks leave the gradient all-reduce together,
# so its boundary time is the control plane's own cost, without waiting.
sed '/^pool:/,$d' "$out/bench.yaml" > "$out/alone.yaml"
mpirun -np 2 --oversubscribe "$LOCALIST" train "$out/alone.yaml" --set "run.dir=$out/alone" >/dev/null 2>&1
python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
for run, label in (("two", "2 ranks, one LLM each"), ("one", "1 rank, both LLMs"),
                   ("alone", "2 ranks, main alone (dp)")):
    recs = [json.loads(l) for l in open(f"{d}/{run}/metrics.jsonl")]
    cp = [r for r in recs if r.get("event") == "control_plane"]
    step_ms = max(r["step_ms"] for r in cp)
    # The last rank to arrive at the boundary waits least: its time is the control plane's
    # own cost; the first rank's includes waiting for it (load imbalance between LLMs).
    cost, waited = min(r["ms_per_step"] for r in cp), max(r["ms_per_step"] for r in cp)
    per_llm = 16 * 64 / step_ms * 1000 if run != "alone" else float("nan")
    print(f"{label:<24} global step {step_ms:7.1f} ms   per LLM {per_llm:8.0f} tok/s"
          f"   control plane {cost:6.3f} ms/step ({100 * cost / step_ms:.2f}%; with waiting {waited:.3f} ms)")
PY
