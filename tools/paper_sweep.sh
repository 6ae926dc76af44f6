#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# paper_sweep.sh: trains the paper's sweep (configs/paper_sweep.yaml): one model per
# fixed λ in {0, 0.2, 0.4, 0.6, 0.8, 1.0} and one dial-conditioned model (λ ~ U[0,1]),
# two at a time (one thread each), then evaluates every model over λ = 0:1:0.2 on the
# held-out WikiText-2 test windows. Results: runs/paper/<model>/eval-step-N/sweep.{csv,json,png}
# and a summary in runs/paper/summary.txt. Usage: tools/paper_sweep.sh [build_dir] [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
STEPS=${2:-600}
LOCALIST="$BUILD_DIR/localist"
CONFIG=configs/paper_sweep.yaml
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
"$LOCALIST" prepare "$CONFIG"

train() {  # name, dial value (YAML)
  "$LOCALIST" train "$CONFIG" --set "run.dir=runs/paper/$1" --set "train.steps=$STEPS" --set "train.dial=$2" \
    > "runs/paper/$1.train.log" 2>&1
}
mkdir -p runs/paper
names=(lambda-0.0 lambda-0.2 lambda-0.4 lambda-0.6 lambda-0.8 lambda-1.0 conditioned)
dials=(0.0 0.2 0.4 0.6 0.8 1.0 "{schedule: uniform, lo: 0.0, hi: 1.0}")
start=$(date +%s)
for i in 0 2 4 6; do
  train "${names[$i]}" "${dials[$i]}" &
  if [ $((i + 1)) -lt ${#names[@]} ]; then train "${names[$((i + 1))]}" "${dials[$((i + 1))]}" & fi
  wait
done
echo "trained ${#names[@]} models of $STEPS steps in $(( $(date +%s) - start )) s" | tee runs/paper/summary.txt
for n in "${names[@]}"; do
  echo "== $n" | tee -a runs/paper/summary.txt
  "$LOCALIST" eval --checkpoint "runs/paper/$n" --dial 0:1:0.2 2>/dev/null | tee -a runs/paper/summary.txt
done
