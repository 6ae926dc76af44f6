#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# demo.sh: the main job on the bundled corpora (run by `make demo` after the build):
# prepare the token shards and print the corpus summary, train the quickstart model on
# 2 local MPI ranks (data parallel), evaluate it across the dial and sample from it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
LOCALIST="$BUILD_DIR/localist"
CONFIG=configs/quickstart.yaml
run() { echo "+ $*"; "$@"; echo; }

"$LOCALIST" info
echo
run "$LOCALIST" prepare "$CONFIG"
# Root needs OpenMPI's explicit consent; 2 ranks on a 2-core machine may oversubscribe.
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=1 OMPI_MCA_mpi_yield_when_idle=1
run mpirun -np 2 --oversubscribe "$LOCALIST" train "$CONFIG"
run "$LOCALIST" eval --checkpoint runs/quickstart --dial 0:1:0.25
run "$LOCALIST" generate --checkpoint runs/quickstart --dial 0.5 --prompt "The " --max-tokens 120 --top-k 8
