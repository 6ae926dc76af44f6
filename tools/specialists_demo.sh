#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# specialists_demo.sh: the hierarchical-recruitment demonstrations of docs/pool.md
# ("spawning") on this machine, on real text: a new domain (configs/specialists.yaml) with
# pool.recruit on and off, a close domain (specialists_close.yaml), stationary data on 3
# seeds (specialists_stationary.yaml) and the new domain at three horizons. Prints every
# spawn decision and the held-out bits per domain of the runs with recruit on and off.
# Usage: tools/specialists_demo.sh [BUILD_DIR]. Takes about 15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-build}/localist"
bash tools/pool_corpora.sh >/dev/null
for c in specialists specialists_close specialists_stationary; do "$bin" prepare "configs/$c.yaml" >/dev/null; done
decisions() {  # the pool_recruitment records of a run, one line each
  python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1] + "/metrics.jsonl"):
    j = json.loads(line)
    if j.get("event") == "recruitment" and j.get("decision") in ("accepted", "rejected", "pruned"):
        print(f"  block  step {j['step']:4} {j.get('llm','main'):>16} {j.get('candidate','-'):>22} {j['decision']}")
    if j.get("event") != "pool_recruitment":
        continue
    if j["decision"] == "no candidate":
        print(f"  spawn  step {j['step']:4} no candidate: " + "; ".join(f"{c['domain']}: {c['why']}" for c in j["candidates"]))
        continue
    print(f"  spawn  step {j['step']:4} {j['domain']:>14}: N_d {j['n_d']:.3g} b_p {j['b_p']:.4f} b_s {j['b_s']:.4f} "
          f"G {j['gain_bits']:.4g} R_d {j['naming_bits']:.4g} SE {j['se_bits']:.3g} c_LLM {j['cost_bits']:.4g} "
          f"delta {j['delta_bits']:.3g} J {j['j_before']:.6g} -> {j['j_after']:.6g}: {j['decision']}")
PY
}
run() {  # name config [--set ...]
  local name=$1 cfg=$2; shift 2
  local t0; t0=$(date +%s)
  "$bin" train "configs/$cfg.yaml" --set "run.dir=runs/demo-$name" "$@" >/dev/null 2>"runs/demo-$name.log" ||
    { echo "$name failed: runs/demo-$name.log" >&2; exit 1; }
  echo "$name ($(( $(date +%s) - t0 )) s):"
  decisions "runs/demo-$name"
}
mkdir -p runs
run new-domain specialists
run new-domain-off specialists --set pool.recruit=false
for h in 1.0e6 1.0e7 1.0e8; do run "horizon-$h" specialists --set "pool.horizon_tokens=$h"; done
run close specialists_close
for s in 1234 7 99; do run "stationary-$s" specialists_stationary --set "run.seed=$s"; done
echo "held-out bits per token by domain (tag routing), recruit on, then off:"
"$bin" eval --checkpoint runs/demo-new-domain --out runs/demo-new-domain/eval | tail -n 12
"$bin" eval --checkpoint runs/demo-new-domain-off --by-domain --out runs/demo-new-domain-off/eval | tail -n 12
