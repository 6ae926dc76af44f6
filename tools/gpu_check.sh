#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# gpu_check.sh: the GPU checks (issue #35) in one run, for the rare session lent a GPU
# machine (one H100/H200, Python 3.12 with torch 2.11.0+cu130, no Debian dev packages,
# no network). The build happens here, so the lent minutes are spent running:
#   tools/gpu_check.sh prepare [BUILD]  on the CPU machine: builds localist, the gpu tests
#                                and bench_train in BUILD (default build, configured as CI
#                                does: CUDA LibTorch 2.11 of the venv), copies them, the
#                                libraries they load (not LibTorch, CUDA or glibc: the GPU
#                                image has those) and OpenMPI's runtime into .gpu/ (ignored
#                                by git: name .gpu in the device run's carry)
#   tools/gpu_check.sh run       on the GPU machine: runs the checks, writes $OUT/gpu_check.txt
# Limits: the binaries are Debian 12's (glibc 2.36); a GPU image with an older glibc
# cannot run them. LibTorch there must be 2.11.0 (the ABI the binaries were linked to).
set -euo pipefail
cd "$(dirname "$0")/.."
GPU_DIR=.gpu

# The libraries a binary loads, as this machine resolves them, minus those the GPU image
# provides itself (glibc, the C++ runtime, LibTorch and its CUDA libraries).
runtime_libs() {
  ldd "$@" 2>/dev/null | awk '/=> \//{print $3}' | sort -u |
    grep -v -E '/(libc|libm|libdl|libpthread|librt|libresolv|ld-linux-x86-64|libgcc_s|libstdc\+\+)\.so' |
    grep -v -E '/\.venv/|/cuda-13|/(libtorch|libc10|libcuda|libcudart|libcublas|libcudnn|libnv|libcufft|libcurand|libcusparse|libcusolver|libgomp)' || true
}

prepare() {
  local B=${1:-build}
  # CI's own recipe (the default build is the CUDA build on LibTorch 2.11): set-up and
  # configure as `make configure` does, then only the three targets the GPU run needs.
  [ -f "$B/CMakeCache.txt" ] || make configure BUILD_DIR="$B"
  cmake --build "$B" -j "${JOBS:-2}" --target localist localist_gpu_tests bench_train
  rm -rf "$GPU_DIR" && mkdir -p "$GPU_DIR/bin" "$GPU_DIR/lib"
  cp "$B/localist" "$B/tests/localist_gpu_tests" "$B/bench/bench_train" "$GPU_DIR/bin/"
  strip "$GPU_DIR"/bin/*
  # OpenMPI's runtime, laid out under a prefix as Debian installs it (OPAL_PREFIX relocates it).
  local P=$GPU_DIR/ompi A=/usr/lib/x86_64-linux-gnu
  mkdir -p "$P/usr/bin" "$P$A" "$P/usr/share" "$P/etc"
  cp /usr/bin/orterun "$P/usr/bin/" && ln -s orterun "$P/usr/bin/mpirun"
  cp -a "$A/openmpi" "$A/pmix2" "$P$A/" && rm -rf "$P$A/openmpi/include" "$P$A/pmix2/include"
  cp -a /usr/share/openmpi /usr/share/pmix "$P/usr/share/" 2>/dev/null || true
  cp -a /etc/openmpi "$P/etc/"
  local plugins
  plugins=$(find "$P$A" -name '*.so' -type f)
  # shellcheck disable=SC2086
  for lib in $(runtime_libs "$GPU_DIR"/bin/* /usr/bin/orterun $plugins); do cp -L "$lib" "$GPU_DIR/lib/"; done
  echo "gpu_check: $(ls "$GPU_DIR/lib" | wc -l) libraries, $(du -sh "$GPU_DIR" | cut -f1) in $GPU_DIR; carry '$GPU_DIR' to the GPU run"
}

run() {
  local out=${OUT:-$GPU_DIR/out}
  mkdir -p "$out"
  local report="$out/gpu_check.txt"
  exec > >(tee "$report") 2>&1
  echo "gpu_check: $(date -u +%FT%TZ) on $(hostname), $(nproc) cores, glibc $(ldd --version | head -1 | awk '{print $NF}')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  local torch_lib nv site
  torch_lib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  site=$(dirname "$(dirname "$torch_lib")")
  nv=$(find "$site/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | tr '\n' ':')
  echo "torch $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)') at $torch_lib"
  local G=$PWD/$GPU_DIR A=/usr/lib/x86_64-linux-gnu
  local P=$G/ompi
  export LD_LIBRARY_PATH="$G/lib:$P$A/openmpi/lib:$P$A/pmix2/lib:$torch_lib:$nv${LD_LIBRARY_PATH:-}"
  export OPAL_PREFIX=$P/usr PMIX_PREFIX=$P$A/pmix2
  export OMPI_MCA_mca_base_param_files=$P/etc/openmpi/openmpi-mca-params.conf
  export PMIX_MCA_mca_base_component_path=$P$A/pmix2/lib/pmix
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  local nccl
  nccl=$(find "$site/nvidia" -name 'libnccl.so.2' 2>/dev/null | head -1)
  [ -n "$nccl" ] && export LOCALIST_NCCL_LIBRARY=$nccl
  local bin=$G/bin L=$G/bin/localist
  echo "--- libraries not found:"; ldd "$L" "$bin/localist_gpu_tests" "$bin/bench_train" | grep "not found" || echo "none"
  echo "--- localist info"; "$L" info || true
  echo "--- gpu tests"; timeout 300 "$bin/localist_gpu_tests" || echo "gpu tests FAILED (exit $?)"

  local R=$GPU_DIR/runs
  rm -rf "$R" && mkdir -p "$R"
  "$L" prepare configs/quickstart.yaml > /dev/null
  echo "--- one rank, CUDA, bf16: 20 steps of the quickstart model"
  timeout 300 "$L" train configs/quickstart.yaml --set train.device=cuda --set train.precision=bf16 \
    --set train.steps=20 --set train.eval_every=0 --set train.log_every=5 --set run.dir="$R/bf16" 2>&1 | tail -6 || true

  echo "--- checkpoint written on one device, resumed on the other: losses of steps 11-20"
  for pair in cuda:cpu cpu:cuda; do
    local from=${pair%%:*} to=${pair##*:}
    local a=$R/ck-$from b=$R/ck-$from-$to
    timeout 300 "$L" train configs/quickstart.yaml --set train.device="$from" --set train.precision=fp32 \
      --set train.steps=20 --set train.eval_every=0 --set train.log_every=1 --set train.checkpoint_every=10 \
      --set run.dir="$a" > "$a.log" 2>&1 || echo "train on $from FAILED: $(tail -2 "$a.log")"
    timeout 300 "$L" train configs/quickstart.yaml --set train.device="$from" --set train.precision=fp32 \
      --set train.steps=10 --set train.eval_every=0 --set train.log_every=1 --set train.checkpoint_every=10 \
      --set run.dir="$b" > "$b.log" 2>&1 || echo "train 10 steps on $from FAILED: $(tail -2 "$b.log")"
    timeout 300 "$L" train configs/quickstart.yaml --set train.device="$to" --set train.precision=fp32 \
      --set train.steps=20 --set train.eval_every=0 --set train.log_every=1 --set train.checkpoint_every=10 \
      --set run.dir="$b" --resume auto >> "$b.log" 2>&1 || echo "resume on $to FAILED: $(tail -2 "$b.log")"
    python3 tools/compare_losses.py "$a/metrics.jsonl" "$b/metrics.jsonl" 11 20 "written on $from, resumed on $to" || true
  done

  echo "--- two ranks on one GPU (NCCL must refuse with a clear message, exit non-zero)"
  set +e
  timeout 120 "$P/usr/bin/mpirun" -np 2 "$L" train configs/quickstart.yaml --set train.device=cuda \
    --set train.steps=2 --set run.dir="$R/dup" > "$R/dup.log" 2>&1
  echo "exit $?"; grep -m3 -E "localist:|rror" "$R/dup.log"
  set -e

  echo "--- GPT-2-124M shape (GPT-2 vocabulary 50,257, context 1024), bf16 autocast, AdamW"
  export LOCALIST_BENCH_DEVICE=cuda LOCALIST_BENCH_SHAPE=gpt2 LOCALIST_BENCH_BF16=1
  export LOCALIST_BENCH_BATCH=${LOCALIST_BENCH_BATCH:-16}
  local lines=""
  for dial in 0 1; do
    lines+="$(LOCALIST_BENCH_DIALS=$dial timeout 240 "$bin/bench_train" 10 3 1 || echo "bench_train dial $dial FAILED")"$'\n'
  done
  lines+="$(timeout 240 python3 bench/baseline_train.py 10 3 1 || echo "baseline FAILED")"
  echo "$lines"
  python3 tools/gpu_mfu.py "$lines" || true

  echo "--- context 1024 -> 8192 at 16,384 tokens a step, SDPA path, dial 1: peak GPU memory stays flat"
  unset LOCALIST_BENCH_BATCH
  for T in 1024 4096 8192; do
    LOCALIST_BENCH_CONTEXT=$T LOCALIST_BENCH_TOKENS=16384 LOCALIST_BENCH_DIALS=1 timeout 120 "$bin/bench_train" 3 1 1 ||
      echo "context $T FAILED"
  done
  echo "gpu_check: done; report in $report"
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) run ;;
  *) echo "usage: tools/gpu_check.sh prepare [BUILD] | run" >&2; exit 2 ;;
esac
