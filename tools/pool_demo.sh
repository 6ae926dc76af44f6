#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# pool_demo.sh: the pool demonstration of docs/pool.md on this machine: writes the
# corpora (tools/pool_corpora.sh), trains configs/pool.yaml (a generalist and two
# specialists in one job) and its compute-matched generalist configs/pool_generalist.yaml,
# then evaluates both by held-out domain. Usage: tools/pool_demo.sh [BUILD_DIR] [RANKS]
# (RANKS > 1 trains the pool under mpirun). Takes a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
ranks=${2:-1}
bin="$build/localist"
bash tools/pool_corpora.sh >/dev/null
"$bin" prepare configs/pool.yaml
launch=("$bin")
if [ "$ranks" -gt 1 ]; then launch=(mpirun -np "$ranks" --oversubscribe "$bin"); fi
start=$(date +%s)
"${launch[@]}" train configs/pool.yaml --set run.dir=runs/pool
mid=$(date +%s)
"$bin" train configs/pool_generalist.yaml --set run.dir=runs/pool-generalist
end=$(date +%s)
echo "pool: $((mid - start)) s on $ranks rank(s); generalist: $((end - mid)) s on 1 rank"
"$bin" eval --checkpoint runs/pool --out runs/pool/eval
"$bin" eval --checkpoint runs/pool-generalist --by-domain --out runs/pool-generalist/eval
