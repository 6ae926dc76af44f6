#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_parallel.sh: what model parallelism and the memory options cost and save, all
# runs in one invocation on this machine (issue #17; numbers go to docs/results.md).
#  1. Step time on 2 ranks, the reference shape (width 256, 4 layers, 4 blocks of one
#     head of 64, context 256, batch 8): data parallel (the baseline), block_parallel 2,
#     ZeRO-1, activation checkpointing, and both options under bp 2; ratios to the
#     baseline. Bytes each rank sends per step (OpenMPI pml monitoring, an N-step run
#     minus an N/2-step one) against the minimum of the split: a ring all-reduce of the
#     gradients for data parallelism; for bp 2 four all-gathers and four reduce-scatters
#     of (batch, context, width) per layer and step, plus the replicated gradients' sum.
#  2. Memory on 4 ranks, a model of 17.1 M parameters (68 MB in float32; width 512, 16 blocks), for bp 1, 2, 4
#     x zero 0, 1 x activation checkpointing off, on: per-rank bytes of parameters,
#     gradients and optimizer state (counted from tensor sizes), and activations: the peak
#     of live CPU tensor bytes during training minus what is live after it (LibTorch's
#     allocator wrapped by LOCALIST_COUNT_TENSOR_MEMORY=1), beside peak RSS for a check.
#  3. Vocabulary parallelism ("vocab", not in the default parts): the quickstart corpora
#     under an 8000-piece SentencePiece vocabulary, width 512, 4 ranks, 3 steps: per-rank
#     parameter bytes and step time at bp 1, bp 2 with the embedding whole and split, bp 4 split.
#  4. A recruitment round's memory ("recruit", not in the default parts): configs/recruitment.yaml
#     on the 17.1 M-parameter shape, 4 ranks, a round at step 2 (probe, control and trial),
#     bp 1, 2, 4, recruitment on and off: the peak of live tensor bytes and what the round
#     adds to it (probes and trials run on each rank's share: nothing whole is assembled).
# Usage: tools/bench_parallel.sh [build_dir] [steps] [parts: "time memory" (default), any of time memory vocab recruit]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
STEPS=${2:-20}
PARTS=${3:-time memory}
want() { [[ " $PARTS " == *" $1 "* ]]; }
LOCALIST="$BUILD_DIR/localist"
CONFIG=configs/quickstart.yaml
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
"$LOCALIST" prepare "$CONFIG" >/dev/null 2>&1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ref=(--set model.d_model=256 --set model.n_layers=4 --set model.k_initial=4 --set model.k_max=4
     --set model.head_dim=64 --set model.context=256 --set train.global_batch=8 --set train.micro_batch=8
     --set train.log_every=1 --set train.eval_every=0 --set "train.steps=$STEPS")
mpi2=(mpirun -np 2 --oversubscribe)
monitor() { echo --mca pml_monitoring_enable 1 --mca pml_monitoring_enable_output 3 --mca pml_monitoring_filename "$1"; }
declare -A variants=(
  [dp]=""
  [bp2]="--set distributed.block_parallel=2"
  [zero]="--set distributed.zero=1"
  [ac]="--set train.activation_checkpointing=true"
  [bp2_ac]="--set distributed.block_parallel=2 --set train.activation_checkpointing=true"
)
for v in dp bp2 zero ac bp2_ac; do
  want time || break
  # shellcheck disable=SC2086
  "${mpi2[@]}" "$LOCALIST" train "$CONFIG" "${ref[@]}" ${variants[$v]} --set "run.dir=$out/$v" >/dev/null 2>&1
done
for v in dp bp2; do
  want time || break
  # shellcheck disable=SC2086
  "${mpi2[@]}" $(monitor "$out/$v-full") "$LOCALIST" train "$CONFIG" "${ref[@]}" ${variants[$v]} \
    --set "run.dir=$out/$v-full" >/dev/null 2>&1
  # shellcheck disable=SC2086
  "${mpi2[@]}" $(monitor "$out/$v-half") "$LOCALIST" train "$CONFIG" "${ref[@]}" ${variants[$v]} \
    --set "train.steps=$((STEPS / 2))" --set "run.dir=$out/$v-half" >/dev/null 2>&1
done
# A model of a few hundred MB of training state per rank, 4 ranks, 3 steps.
big=(--set model.d_model=512 --set model.n_layers=4 --set model.k_initial=16 --set model.k_max=16
     --set model.head_dim=64 --set model.anchor_dim=8 --set model.context=256 --set train.global_batch=4
     --set train.micro_batch=4 --set train.steps=3 --set train.eval_every=0 --set train.log_every=1)
for bp in 1 2 4; do
  want memory || break
  for zero in 0 1; do
    for ac in false true; do
      LOCALIST_COUNT_TENSOR_MEMORY=1 mpirun -np 4 --oversubscribe -x LOCALIST_COUNT_TENSOR_MEMORY "$LOCALIST" train "$CONFIG" "${big[@]}" --set distributed.block_parallel=$bp \
        --set distributed.zero=$zero --set train.activation_checkpointing=$ac \
        --set "run.dir=$out/mem-$bp-$zero-$ac" >/dev/null 2>&1
    done
  done
done
sp=(--set data.tokenizer.kind=sentencepiece --set data.tokenizer.vocab_size=8000 --set data.shard_dir=shards/sp8000
    --set model.d_model=512 --set model.n_layers=2 --set model.k_initial=8 --set model.k_max=8 --set model.head_dim=64
    --set model.context=128 --set train.global_batch=8 --set train.micro_batch=2 --set train.steps=3
    --set train.eval_every=0 --set train.log_every=1)
if want vocab; then
  "$LOCALIST" prepare "$CONFIG" "${sp[@]}" >/dev/null 2>&1
  for v in "1 off" "2 off" "2 on" "4 on"; do
    set -- $v
    mpirun -np 4 --oversubscribe "$LOCALIST" train "$CONFIG" "${sp[@]}" --set distributed.block_parallel=$1 \
      --set distributed.vocab_parallel=$2 --set "run.dir=$out/vocab-$1-$2" >/dev/null 2>&1
  done
fi
rec=(--set model.d_model=512 --set model.n_layers=4 --set model.k_initial=12 --set model.k_max=16
     --set model.head_dim=64 --set model.context=256 --set train.global_batch=4 --set train.micro_batch=1
     --set train.steps=3 --set train.log_every=1 --set recruitment.interval=2 --set recruitment.probe_windows=16
     --set recruitment.n_try=2 --set recruitment.n_min=16)
if want recruit; then
  "$LOCALIST" prepare configs/recruitment.yaml >/dev/null 2>&1
  for bp in 1 2 4; do
    for on in true false; do
      LOCALIST_COUNT_TENSOR_MEMORY=1 mpirun -np 4 --oversubscribe -x LOCALIST_COUNT_TENSOR_MEMORY "$LOCALIST" train \
        configs/recruitment.yaml "${rec[@]}" --set distributed.block_parallel=$bp --set recruitment.enabled=$on \
        --set "run.dir=$out/rec-$bp-$on" >/dev/null 2>&1
    done
  done
fi
python3 - "$out" "$STEPS" "$PARTS" <<'PY'
import json, statistics, sys
out, steps, parts = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def records(run, event):
    return [json.loads(l) for l in open(f"{out}/{run}/metrics.jsonl") if f'"event":"{event}"' in l]
def ms(run):
    return statistics.median(r["ms_per_step"] for r in records(run, "step")[5:])
def sent(prefix, rank):
    return sum(int(l.split("\t")[3].split()[0]) for l in open(f"{prefix}.{rank}.prof") if l.startswith("E\t"))
if "time" in parts:
    base = ms("dp")
    print("step time, 2 ranks, reference shape (median after 5 warm-up steps):")
    labels = {"dp": "data parallel (baseline)", "bp2": "block_parallel 2", "zero": "data parallel + zero 1",
              "ac": "data parallel + activation checkpointing", "bp2_ac": "block_parallel 2 + activation checkpointing"}
    for v in ("dp", "bp2", "zero", "ac", "bp2_ac"):
        print(f"  {labels[v]:45s} {ms(v):7.1f} ms/step  {ms(v) / base:5.3f}x")
    B, T, d, L = 8, 256, 256, 4
    mem = {r["rank"]: r for r in records("dp", "memory")}
    params = mem[0]["parameter_bytes"]
    replicated = 4 * (256 * 256 + 256 * 256 + 2 * 256 + L * (8 * 256 + 4 * 256 + 2 * 256))  # wte, wpe, lnf, per layer
    n = 2
    minimum = {"dp": 2 * (n - 1) / n * params,
               "bp2": L * 8 * (n - 1) / n * B * T * d * 4 + 2 * (n - 1) / n * replicated}
    print("bytes sent per step and rank (pml monitoring, N - N/2 steps):")
    for v in ("dp", "bp2"):
        for rank in (0, 1):
            per = (sent(f"{out}/{v}-full", rank) - sent(f"{out}/{v}-half", rank)) / (steps - steps // 2)
            print(f"  {labels[v]:26s} rank {rank}: {per / 1e6:8.2f} MB = {per / minimum[v]:.3f}x the split's minimum "
                  f"{minimum[v] / 1e6:.2f} MB")
if "vocab" in parts:
    print("vocabulary parallelism, 8000 SentencePiece pieces, width 512, 4 ranks (largest rank), MB:")
    print(f"  {'bp':>2} {'vocab split':>11} {'params':>8} {'grads':>8} {'optim':>8} {'ms/step':>8}")
    for bp, v in ((1, "off"), (2, "off"), (2, "on"), (4, "on")):
        run = f"vocab-{bp}-{v}"
        rs = records(run, "memory")
        worst = lambda k: max(r[k] for r in rs) / 1e6
        step = statistics.median(r["ms_per_step"] for r in records(run, "step")[1:])
        print(f"  {bp:>2} {v:>11} {worst('parameter_bytes'):8.1f} {worst('gradient_bytes'):8.1f} "
              f"{worst('optimizer_bytes'):8.1f} {step:8.0f}")
if "memory" in parts:
    print("memory per rank (largest over the 4 ranks), 17.1 M parameters, MB; activations = peak live tensor bytes")
    print("during training - live after it; peak RSS for comparison:")
    print(f"  {'bp':>2} {'zero':>4} {'act.ckpt':>8} {'params':>8} {'grads':>8} {'optim':>8} {'activ.':>8} {'peakRSS':>8} {'ms/step':>8} {'live/counted':>12}")
    for bp in (1, 2, 4):
        for zero in (0, 1):
            for ac in ("false", "true"):
                run = f"mem-{bp}-{zero}-{ac}"
                rs = records(run, "memory")
                worst = lambda k: max(r[k] for r in rs) / 1e6
                act = max(r["peak_tensor_bytes"] - r["tensor_bytes"] for r in rs) / 1e6
                step = statistics.median(r["ms_per_step"] for r in records(run, "step")[1:]) if len(records(run, "step")) > 1 else float("nan")
                # The allocator's live bytes after training against what the record counts
                # (parameters, gradients, moments, communication buffers): the counts' check.
                check = max(r["tensor_bytes"] / (r["parameter_bytes"] + r["gradient_bytes"] + r["optimizer_bytes"] +
                                                 r.get("sync_buffer_bytes", 0)) for r in rs)
                print(f"  {bp:>2} {zero:>4} {ac:>8} {worst('parameter_bytes'):8.1f} {worst('gradient_bytes'):8.1f} "
                      f"{worst('optimizer_bytes'):8.1f} {act:8.1f} {worst('peak_rss_bytes'):8.1f} {step:8.0f} {check:12.3f}")
if "recruit" in parts:
    print("a recruitment round's memory, 17.1 M parameters, 4 ranks (largest rank), MB: peak live tensor bytes")
    print(f"  {'bp':>2} {'params':>8} {'peak, no round':>14} {'peak, round':>11} {'round adds':>10} {'decision':>12}")
    for bp in (1, 2, 4):
        on, off = records(f"rec-{bp}-true", "memory"), records(f"rec-{bp}-false", "memory")
        peak = lambda rs: max(r["peak_tensor_bytes"] for r in rs) / 1e6
        decision = [r.get("decision", "") for r in records(f"rec-{bp}-true", "recruitment")]
        print(f"  {bp:>2} {max(r['parameter_bytes'] for r in on) / 1e6:8.1f} {peak(off):14.1f} {peak(on):11.1f} "
              f"{peak(on) - peak(off):10.1f} {','.join(decision):>12}")
PY
