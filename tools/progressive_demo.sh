#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# progressive_demo.sh: the progressive-locality experiment (arXiv 2511.18375) at this
# machine's scale (docs/results.md, "Progressive locality"). A distributed (λ = 0) GPT-2-
# style model is pretrained by localist on WikiText-2 and German text with its own byte-
# level BPE, exported as plain GPT-2 (--format gpt2), imported (model.init_from) and
# fine-tuned on tiny Shakespeare at equal steps with λ = 0, uniform, linear and quintic
# per-layer profiles of a dial ramped 0 → 1, and the same fine-tunes from scratch; each is
# evaluated on held-out Shakespeare at its final dial. Prints and writes summary.md/json.
# Usage: tools/progressive_demo.sh [WORK_DIR]   (PRETRAIN_STEPS, FINETUNE_STEPS, LAYERS env)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${LOCALIST_BIN:-$root/build/localist}")
py=${LOCALIST_PYTHON:-$root/.venv/bin/python}
work=${1:-$root/runs/progressive}
pretrain_steps=${PRETRAIN_STEPS:-1500}
finetune_steps=${FINETUNE_STEPS:-400}
layers=${LAYERS:-6}
bash "$root/tools/pool_corpora.sh" >/dev/null
mkdir -p "$work"
cd "$work"
c=$root/corpora
[ -f tokenizer.json ] || "$py" "$root/tools/train_bpe.py" tokenizer.json 4096 "$c/wikitext2-valid.txt" \
  "$c/generated/german-train.txt"

# GPT-2's architecture (gelu_tanh, LayerNorm 1e-5, tied head) with 4 heads of 32 in d 128:
# each head a block, so the pretrained heads are the fine-tune's 4 blocks.
model="model:
  d_model: 128
  n_layers: $layers
  context: 128
  heads_per_block: 1
  head_dim: 32
  k_initial: 4
  k_max: 4
  anchor_dim: 8
  activation: gelu_tanh"
cat > pretrain.yaml <<YAML
run: {dir: pretrain, seed: 1}
data:
  shard_dir: shards-pretrain
  tokenizer: {kind: bpe, model: tokenizer.json}
  sources:
    - {name: wiki, path: $c/wikitext2-valid.txt, split: wikitext, domain: encyclopedia}
    - {name: german, path: $c/generated/german-train.txt, split: blank_line, domain: german}
    - {name: wiki-test, path: $c/wikitext2-test.txt, split: wikitext, domain: encyclopedia, train: false}
$model
train:
  steps: $pretrain_steps
  global_batch: 16
  micro_batch: 8
  lr: 3.0e-3
  min_lr: 3.0e-4
  warmup_steps: 50
  dial: 0
  log_every: 50
  eval_every: 0
  eval_windows: 32
YAML
if [ ! -f pretrain/checkpoints/step-$(printf %08d "$pretrain_steps")/index.h5 ]; then
  "$bin" prepare pretrain.yaml
  "$bin" train pretrain.yaml
fi
[ -d base ] || "$bin" export --checkpoint pretrain --format gpt2 --out base --windows 32

# The fine-tunes: tiny Shakespeare (first 90%), held out: its last 10%; the dial ramps from
# 0 to 1 over the first half of the steps and stays there; the profile shapes it by layer.
finetune() {  # name profile(none|uniform|linear|power:P) init(yes|no)
  local name=$1 profile=$2 init=$3 dial yaml_profile
  dial="{schedule: linear, from: 0, to: 1, start: 0, end: $((finetune_steps / 2))}"
  [ "$profile" = none ] && dial=0 && profile=uniform
  yaml_profile=$profile
  case $profile in power:*) yaml_profile="{power: ${profile#power:}}" ;; esac
  cat > "ft-$name.yaml" <<YAML
run: {dir: ft-$name, seed: 2}
data:
  shard_dir: shards-finetune
  tokenizer: {kind: bpe, model: base}
  sources:
    - {name: drama, path: $c/generated/shakespeare-train.txt, split: blank_line, domain: drama}
    - {name: drama-held, path: $c/generated/shakespeare-heldout.txt, split: blank_line, domain: drama, train: false}
$model
$([ "$init" = yes ] && echo "  init_from: {format: hf, path: base}")
train:
  steps: $finetune_steps
  global_batch: 16
  micro_batch: 8
  lr: 1.0e-3
  min_lr: 1.0e-4
  warmup_steps: 20
  dial: $dial
  dial_profile: $yaml_profile
  log_every: 50
  eval_every: 0
  eval_windows: 32
YAML
  [ -d shards-finetune ] || "$bin" prepare "ft-$name.yaml"
  local last
  last=ft-$name/checkpoints/step-$(printf %08d "$finetune_steps")
  [ -f "$last/index.h5" ] || "$bin" train "ft-$name.yaml"
  local eval_dial=1
  [ "$2" = none ] && eval_dial=0
  [ -f "eval-$name/sweep.json" ] || "$bin" eval --checkpoint "$last" --dial "$eval_dial" --dial-profile "$profile" \
    --windows 400 --out "eval-$name" >/dev/null
}
finetune lambda0 none yes
finetune uniform uniform yes
finetune linear linear yes
finetune quintic power:5 yes
finetune scratch-lambda0 none no
finetune scratch-quintic power:5 no
"$bin" eval --checkpoint pretrain --dial 0 --windows 32 --out eval-pretrain >/dev/null

"$py" - "$pretrain_steps" "$finetune_steps" "$layers" <<'PY'
import json, sys
runs = ["lambda0", "uniform", "linear", "quintic", "scratch-lambda0", "scratch-quintic"]
L = int(sys.argv[3])
profile = {"lambda0": lambda l: 0.0, "uniform": lambda l: 1.0, "linear": lambda l: l / (L - 1),
           "quintic": lambda l: (l / (L - 1)) ** 5}
profile["scratch-lambda0"], profile["scratch-quintic"] = profile["lambda0"], profile["quintic"]
rows = {r: json.load(open(f"eval-{r}/sweep.json"))[0] for r in runs}
pre = json.load(open("eval-pretrain/sweep.json"))[0]
base = rows["lambda0"]["perplexity"]
out = [f"pretrained {sys.argv[1]} steps at λ = 0 (WikiText-2 test at λ = 0: perplexity {pre['perplexity']:.2f}); "
       f"fine-tunes {sys.argv[2]} steps on tiny Shakespeare, evaluated on its held-out 10% at the final dial", "",
       "| fine-tune | dial per layer | perplexity | × λ = 0 fine-tune | attention entropy per layer (bits) | own-block fidelity per layer |",
       "|---|---|---|---|---|---|"]
fmt = lambda v: ", ".join(f"{x:.2f}" for x in v)
for r in runs:
    m = rows[r]
    out.append(f"| {r} | {fmt(profile[r](l) for l in range(L))} | {m['perplexity']:.2f} | {m['perplexity'] / base:.2f}× | "
               f"{fmt(m['attn_entropy_per_layer_bits'])} | {fmt(m['own_fidelity_per_layer'])} |")
text = "\n".join(out) + "\n"
open("summary.md", "w").write(text)
json.dump({"pretrain": pre, "finetunes": rows}, open("summary.json", "w"), indent=1)
print(text)
PY
