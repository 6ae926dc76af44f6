#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_train.sh: localist (C++) against the plain PyTorch-Python baseline on the same
# model shape, in one go, both on the LibTorch 2.11 of the project's venv (the baseline
# attends through F.scaled_dot_product_attention), each with THREADS intra-op threads
# (default: the cores; MKL follows them), plus the machine's measured fp32 matmul rate, so
# each result is also a fraction of what the BLAS can do. Run on an idle machine.
# The localist lines: the fused CPU kernels (the default), the SDPA path
# (LOCALIST_ATTENTION=sdpa) and the unfused reference path.
# Usage: tools/bench_train.sh [build_dir] [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
STEPS=${2:-20}
PY=${LOCALIST_VENV:-$PWD/.venv}/bin/python
"$PY" -c "import torch" 2>/dev/null || { echo "bench_train: no torch in $PY; run tools/setup.sh" >&2; exit 1; }
CORES=$(getconf _NPROCESSORS_ONLN)
THREADS=${THREADS:-$CORES}
export OMP_NUM_THREADS=$THREADS
ROUNDS=${ROUNDS:-3}
echo "threads: $THREADS (torch intra-op, MKL); $CORES cores; torch $("$PY" -c 'import torch; print(torch.__version__)'); best of $ROUNDS interleaved rounds"
peak=$("$PY" - "$THREADS" <<'PY'
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
for _ in range(3): a @ b
best = min((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(10))
print(f"{2 * 1024**3 / best / 1e9:.1f}")
PY
)
echo "machine fp32 matmul (1024^2, torch): $peak GFLOP/s"
# Interleaved rounds, best of each: this machine's speed drifts by 10-20% over minutes.
all_cpp="" all_py=""
for r in $(seq "$ROUNDS"); do
  all_cpp+="$("$BUILD_DIR/bench/bench_train" "$STEPS" 3 "$THREADS")"$'\n'
  all_cpp+="$(LOCALIST_ATTENTION=sdpa "$BUILD_DIR/bench/bench_train" "$STEPS" 3 "$THREADS")"$'\n'
  all_cpp+="$(LOCALIST_BENCH_UNFUSED=1 "$BUILD_DIR/bench/bench_train" "$STEPS" 3 "$THREADS")"$'\n'
  all_py+="$("$PY" bench/baseline_train.py "$STEPS" 3 "$THREADS")"$'\n'
done
best() { grep "$1" | sort -t' ' -k3 -n | awk -v key="ms/step" '{for(i=1;i<=NF;i++) if($i==key) print $(i+1), $0}' | sort -n | head -1 | cut -d' ' -f2-; }
cpp="$(printf '%s' "$all_cpp" | best 'cpp dial=0.0')"$'\n'"$(printf '%s' "$all_cpp" | best 'cpp dial=1.0')"
cpp+=$'\n'"$(printf '%s' "$all_cpp" | best 'unfused dial=0.0')"$'\n'"$(printf '%s' "$all_cpp" | best 'unfused dial=1.0')"
cpp+=$'\n'"$(printf '%s' "$all_cpp" | best 'sdpa dial=0.0')"$'\n'"$(printf '%s' "$all_cpp" | best 'sdpa dial=1.0')"
py="$(printf '%s' "$all_py" | best pytorch)"
echo "$cpp"
echo "$py"
# Model FLOPs per token for training: 6 x (non-embedding params + tied head) + attention 12 L T d.
"$PY" - "$peak" <<PY
import re, sys
peak = float(sys.argv[1])
cpp = """$cpp""".splitlines()
py = """$py"""
L, d, T, V = 4, 256, 256, 258
flops_tok = 6 * (12 * L * d * d + V * d) + 12 * L * T * d
tps = lambda s: float(re.search(r"tokens/s (\d+)", s).group(1))
base = tps(py)
for line in cpp:
    r = tps(line)
    print(f"{line.split(' ms/')[0]}: {r / base:.2f}x the PyTorch baseline, {100 * r * flops_tok / 1e9 / peak:.1f}% of the matmul rate")
print(f"pytorch-python: {100 * base * flops_tok / 1e9 / peak:.1f}% of the matmul rate")
l0, l1 = tps(cpp[0]), tps(cpp[1])
print(f"dial 1 vs dial 0: {100 * (l0 - l1) / l0:+.1f}% slower (fused)")
print(f"fused vs unfused: {l0 / tps(cpp[2]):.2f}x at dial 0, {l1 / tps(cpp[3]):.2f}x at dial 1")
print(f"fused vs sdpa: {l0 / tps(cpp[4]):.2f}x at dial 0, {l1 / tps(cpp[5]):.2f}x at dial 1")
PY
