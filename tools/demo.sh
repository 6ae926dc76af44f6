#!/usr/bin/env bash
# demo.sh: the main job on the bundled corpora (run by `make demo` after the build).
# Until the model lands (issue #3) that is: prepare the token shards, print the corpus
# summary, and check the quickstart config and data on 2 local MPI ranks (dry run).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
LOCALIST="$BUILD_DIR/localist"
CONFIG=configs/quickstart.yaml

"$LOCALIST" info
echo
echo "+ $LOCALIST prepare $CONFIG"
"$LOCALIST" prepare "$CONFIG"
echo
# Root needs OpenMPI's explicit consent; 2 ranks on a 2-core machine may oversubscribe.
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=1 OMPI_MCA_mpi_yield_when_idle=1
echo "+ mpirun -np 2 --oversubscribe $LOCALIST train --dry-run $CONFIG"
mpirun -np 2 --oversubscribe "$LOCALIST" train --dry-run "$CONFIG"
