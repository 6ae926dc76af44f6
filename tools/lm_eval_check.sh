#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lm_eval_check.sh: lm-evaluation-harness on an exported localist model gives the bits per
# byte and perplexity `localist eval` gives on the same text (docs/export.md). A small
# byte-level model is trained on tiny Shakespeare; the held-out text is one document of
# 40 × context bytes of WikiText-2 test: localist's held-out windows (stride T, the first
# starting at the document token) are then exactly lm-eval's rolling windows (prefix token
# = the tokenizer's BOS = the document token, max_length T), so both score the same
# predictions from the same contexts. lm-eval (pinned) goes into its own venv,
# .venv-lmeval, which sees the project venv's torch and transformers (a .pth file): ~160 MB
# from PyPI the first time, which is why this is a script and not part of CI.
# Usage: tools/lm_eval_check.sh [build_dir] [dial]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${1:-build}
DIAL=${2:-0.5}
LMEVAL_PIN=0.4.13
# lm-eval's HF model needs accelerate; --no-deps, so that pip does not fetch torch's
# NVIDIA wheels (the toolkit provides those libraries; tools/setup.sh).
ACCELERATE_PINS=(accelerate==1.16.0 psutil==7.2.2)
VENV=${LOCALIST_VENV:-$ROOT/.venv}
LM=$ROOT/.venv-lmeval
[ -x "$BUILD/localist" ] || { echo "lm_eval_check: no $BUILD/localist; build first" >&2; exit 1; }
if ! "$LM/bin/python" -c "import lm_eval, accelerate, torch, transformers" 2>/dev/null; then
  echo "lm_eval_check: installing lm-eval==$LMEVAL_PIN into $LM"
  /usr/bin/python3 -m venv "$LM"
  site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  echo "$site" > "$("$LM/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/localist-venv.pth"
  "$LM/bin/pip" install -q --disable-pip-version-check "lm-eval==$LMEVAL_PIN"
  "$LM/bin/pip" install -q --disable-pip-version-check --no-deps "${ACCELERATE_PINS[@]}"
fi
W=$(mktemp -d /tmp/localist-lmeval-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
T=64
# One document of exactly 40 T bytes (printable ASCII): localist's 40 held-out windows
# (stride T, each [the token before, T predicted]) are then lm-eval's rolling windows.
"$VENV/bin/python" - "$ROOT/corpora/wikitext2-test.txt" "$W" "$T" <<'PY'
import json, re, sys
src, out, T = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = re.sub(r"\s+", " ", open(src, encoding="utf-8").read()).encode("ascii", "ignore").decode()
doc = "x" + text[1:40 * T - 1] + "x"
open(f"{out}/heldout.txt", "w").write(doc)
with open(f"{out}/heldout.jsonl", "w") as f:
    f.write(json.dumps({"text": doc}) + "\n")
PY
cat > "$W/c.yaml" <<YAML
run: {dir: run, seed: 7}
data:
  shard_dir: shards
  sources:
    - {name: drama, path: $ROOT/corpora/tinyshakespeare.txt, split: blank_line}
    - {name: wiki, path: heldout.txt, split: file, train: false}
model: {context: $T, d_model: 64, head_dim: 16, k_initial: 4, k_max: 4, anchor_dim: 4}
train: {steps: 150, global_batch: 16, micro_batch: 16, eval_windows: 40, dial: $DIAL, eval_every: 0}
YAML
cd "$W"
"$ROOT/$BUILD/localist" prepare c.yaml >/dev/null
"$ROOT/$BUILD/localist" train c.yaml >/dev/null
"$ROOT/$BUILD/localist" eval --checkpoint run --dial "$DIAL" --out ev | tail -2
"$ROOT/$BUILD/localist" export --checkpoint run --out hf --windows 4 >/dev/null
mkdir tasks
cat > tasks/localist_heldout.yaml <<YAML
task: localist_heldout
dataset_path: json
dataset_kwargs: {data_files: {test: $W/heldout.jsonl}}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{text}}"
metric_list:
  - {metric: word_perplexity}
  - {metric: byte_perplexity}
  - {metric: bits_per_byte}
YAML
HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 "$LM/bin/lm_eval" --model hf \
  --model_args "pretrained=$W/hf,trust_remote_code=True,dial=$DIAL,max_length=$T,dtype=float32" \
  --tasks localist_heldout --include_path tasks --device cpu --batch_size 1 --output_path lm >/dev/null 2>lm.log ||
  { tail -20 lm.log; exit 1; }
"$VENV/bin/python" - <<'PY'
import glob, json, math
ev = json.load(open("ev/sweep.json"))[0]
res = json.load(open(sorted(glob.glob("lm/**/results_*.json", recursive=True))[-1]))["results"]["localist_heldout"]
bpb_lm, bpb = res["bits_per_byte,none"], ev["bits_per_byte"]
ppl_lm, ppl = res["byte_perplexity,none"], ev["perplexity"]
print(f"localist eval: {ev['tokens']} tokens, bits/byte {bpb:.6f}, perplexity {ppl:.6f}")
print(f"lm-eval:       bits/byte {bpb_lm:.6f}, byte perplexity {ppl_lm:.6f}")
d = max(abs(bpb_lm - bpb) / bpb, abs(ppl_lm - ppl) / ppl)
print(f"largest relative difference {d:.2e} (limit 1e-4): {'ok' if d <= 1e-4 else 'FAIL'}")
raise SystemExit(0 if d <= 1e-4 else 1)
PY
