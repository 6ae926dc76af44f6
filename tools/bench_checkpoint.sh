#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_checkpoint.sh: checkpoint write/read throughput at 1 and 2 ranks beside this
# disk's sequential speed measured by dd in the same invocation (write: 1 MiB blocks,
# fdatasync at the end, as checkpoint files are fsync'd; read: the page cache dropped
# first, as the benchmark does for checkpoints), and the time an asynchronous checkpoint
# makes training wait against the host copy alone. Files go to a temporary directory
# beside the build (set TMPDIR to measure another file system).
# Usage: tools/bench_checkpoint.sh [build_dir] [d_model] [n_layers] [repeats]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
D_MODEL=${2:-1024}
LAYERS=${3:-4}
REPEATS=${4:-3}
BENCH="$BUILD_DIR/bench/bench_checkpoint"
[ -x "$BENCH" ] || { echo "bench_checkpoint: $BENCH not built; run: cmake --build $BUILD_DIR --target bench_checkpoint" >&2; exit 2; }
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
out=$(mktemp -d "${TMPDIR:-/tmp}/localist-bench-ckpt.XXXXXX")
trap 'rm -rf "$out"' EXIT
MB=$(( 3 * 4 * (12 * D_MODEL * D_MODEL * LAYERS) / 1000000 + 1 ))  # ~ parameters + 2 moments
echo "dd, $MB MB:"
dd if=/dev/zero of="$out/dd.bin" bs=1M count="$MB" conv=fdatasync 2>&1 | tail -1 | sed 's/^/  write: /'
dd if="$out/dd.bin" iflag=nocache count=0 status=none
dd if="$out/dd.bin" of=/dev/null bs=1M 2>&1 | tail -1 | sed 's/^/  read (cold): /'
rm -f "$out/dd.bin"
"$BENCH" "$out/r1" "$D_MODEL" "$LAYERS" "$REPEATS" 2>/dev/null
mpirun -np 2 --oversubscribe "$BENCH" "$out/r2" "$D_MODEL" "$LAYERS" "$REPEATS" 2>/dev/null
