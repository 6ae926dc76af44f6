#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# recruitment_seeds.sh: the no-margin acceptance check of block recruitment (δ = 0, the
# confidence bound G − z·SE deciding): configs/recruitment.yaml with Shakespeare's last
# 10% held out, trained on 3 seeds with Shakespeare arriving at step 150 (a block should
# be recruited for it) and with Shakespeare held back (stationary: no block). Prints
# every round's G, SE, c_blk and decision. Usage: tools/recruitment_seeds.sh [BUILD_DIR] [SEEDS...]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-build}/localist"
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1234 7 99)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 - "$out" <<'PY'
import sys
out = sys.argv[1]
text = open("corpora/tinyshakespeare.txt").read()
cut = text.rfind("\n\n", 0, len(text) * 9 // 10) + 2
open(f"{out}/drama-train.txt", "w").write(text[:cut])
open(f"{out}/drama-test.txt", "w").write(text[cut:])
cfg = open("configs/recruitment.yaml").read()
cfg = cfg.replace("path: corpora/tinyshakespeare.txt", f"path: {out}/drama-train.txt")
cfg = cfg.replace("path: corpora/wikitext2-test.txt\n      domain: encyclopedia",
                  f"path: {out}/drama-test.txt\n      domain: drama")
cfg = cfg.replace("shard_dir: shards/byte", f"shard_dir: {out}/shards")
open(f"{out}/shift.yaml", "w").write(cfg)
open(f"{out}/stationary.yaml", "w").write(cfg.replace("start_step: 150", "start_step: 100000"))
PY
"$bin" prepare "$out/shift.yaml" >/dev/null
for seed in "${seeds[@]}"; do
  for kind in shift stationary; do
    "$bin" train "$out/$kind.yaml" --set "run.dir=$out/$kind-$seed" --set "run.seed=$seed" >/dev/null 2>&1
    python3 - "$out/$kind-$seed/metrics.jsonl" "$kind" "$seed" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if '"event":"recruitment"' in l and '"gain_bits"' in l]
print(f"{sys.argv[2]:<10} seed {sys.argv[3]:>5}: " + "; ".join(
    f"{r['step']} {r['candidate'].split()[-1]} G {r['gain_bits']:.0f} SE {r['se_bits']:.0f} c {r['cost_bits']:.0f} "
    f"{r['decision']}" for r in recs))
PY
  done
done
