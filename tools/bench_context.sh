#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_context.sh: training at contexts 256 -> 4096 with a fixed number of tokens per
# step (batch = tokens / context), each run in its own process so its peak resident
# memory is its own: the fused path, the SDPA path and the unfused path (λ = 0 and 1
# each) and the plain PyTorch-Python model (torch 2.11 of the venv, SDPA attention);
# prints a table and plots docs/img/context-curve.png.
# Reference shape otherwise (bench_train.cpp). Run on an idle machine.
# Usage: tools/bench_context.sh [build_dir] [tokens_per_step] [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
TOKENS=${2:-4096}
STEPS=${3:-3}
CONTEXTS=${CONTEXTS:-256 512 1024 2048 4096}
PY=${LOCALIST_VENV:-$PWD/.venv}/bin/python
"$PY" -c "import torch" 2>/dev/null || { echo "bench_context: no torch in $PY; run tools/setup.sh" >&2; exit 1; }
THREADS=${THREADS:-$(getconf _NPROCESSORS_ONLN)}
export OMP_NUM_THREADS=$THREADS
out=${OUT:-$BUILD_DIR/bench-context.tsv}
printf 'context\trun\ttokens_per_s\tms_per_step\tpeak_rss_mb\n' > "$out"
field() { awk -v key="$1" '{for (i = 1; i < NF; i++) if ($i == key) print $(i + 1)}'; }
record() {  # context, name, output line
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(field tokens/s <<<"$3")" "$(field ms/step <<<"$3")" \
    "$(field peak_rss_mb <<<"$3")" >> "$out"
  echo "context $1 $2: $3"
}
for T in $CONTEXTS; do
  export LOCALIST_BENCH_CONTEXT=$T LOCALIST_BENCH_TOKENS=$TOKENS
  for dial in 0 1; do
    record "$T" "fused-dial$dial" "$(LOCALIST_BENCH_DIALS=$dial "$BUILD_DIR/bench/bench_train" "$STEPS" 1 "$THREADS")"
    record "$T" "sdpa-dial$dial" "$(LOCALIST_ATTENTION=sdpa LOCALIST_BENCH_DIALS=$dial "$BUILD_DIR/bench/bench_train" "$STEPS" 1 "$THREADS")"
    record "$T" "unfused-dial$dial" "$(LOCALIST_BENCH_UNFUSED=1 LOCALIST_BENCH_DIALS=$dial "$BUILD_DIR/bench/bench_train" "$STEPS" 1 "$THREADS")"
  done
  record "$T" "pytorch" "$("$PY" bench/baseline_train.py "$STEPS" 1 "$THREADS")"
done
column -t "$out"
if command -v gnuplot >/dev/null; then
  mkdir -p docs/img
  # One file per series: a filtered-out row (1/0) would break each series' line.
  runs="fused-dial0 fused-dial1 sdpa-dial0 sdpa-dial1 unfused-dial0 unfused-dial1 pytorch"
  for r in $runs; do awk -F'\t' -v r="$r" '$2 == r' "$out" > "$out.$r"; done
  gnuplot <<GP
set terminal pngcairo size 1100,420 font "DejaVu Sans,10"
set output "docs/img/context-curve.png"
set datafile separator "\t"
set multiplot layout 1,2 title "Training at $TOKENS tokens per step (reference shape, $THREADS threads, LibTorch 2.11)"
set logscale x 2
set xlabel "context (tokens)"
set key top right
set ylabel "tokens / s"
plot for [r in "$runs"] "$out.".r using 1:3 with linespoints title r
set ylabel "peak resident memory (MB)"
set logscale y 2
set key top left
plot for [r in "$runs"] "$out.".r using 1:5 with linespoints title r
unset multiplot
GP
  for r in $runs; do rm -f "$out.$r"; done
  echo "plot: docs/img/context-curve.png"
fi
