#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# gpu_check.sh: the GPU checks of issue #14 in one run, for the rare session that is
# lent a GPU machine (an H200 with nvcc, PyTorch and its LibTorch and NCCL, CMake and
# ninja, but no Debian dev packages and no network). Two steps:
#   tools/gpu_check.sh prepare   on the CPU machine: downloads the Debian packages the
#                                build needs into .gpu/debs (ignored by git: name .gpu in
#                                the device run's carry)
#   tools/gpu_check.sh run       on the GPU machine: unpacks them into .gpu/prefix, builds
#                                localist against PyTorch's CUDA LibTorch, runs the gpu
#                                tests, the two-ranks-on-one-GPU check, a short CUDA
#                                training run, and the GPT-2-124M-shape benchmark (λ 0
#                                and 1, bf16) against plain PyTorch; writes $OUT/gpu_check.txt
# Limits: written and checked on the CPU machine; the first GPU run is its real test.
set -euo pipefail
cd "$(dirname "$0")/.."
GPU_DIR=.gpu
DEBS=$GPU_DIR/debs
# The build's libraries and headers (and their runtime libraries a PyTorch image lacks);
# not LibTorch, which comes from PyTorch there.
PACKAGES=(
  libopenmpi3 libopenmpi-dev openmpi-bin openmpi-common libpmix2 libpmix-dev libhwloc15
  libevent-core-2.1-7 libevent-pthreads-2.1-7 libmunge2 libibverbs1 libnl-3-200 libnl-route-3-200
  libhdf5-103-1 libhdf5-cpp-103-1 libhdf5-hl-100 libhdf5-dev libsz2 libaec0 libcurl3-gnutls
  libyaml-cpp0.7 libyaml-cpp-dev libspdlog1.10 libspdlog-dev libfmt9 libfmt-dev libgtest-dev
  libsentencepiece0 libsentencepiece-dev libcli11-dev nlohmann-json3-dev libssl-dev
)

prepare() {
  mkdir -p "$DEBS"
  apt-get update -qq
  (cd "$DEBS" && apt-get download "${PACKAGES[@]}")
  echo "gpu_check: $(ls "$DEBS" | wc -l) packages, $(du -sh "$DEBS" | cut -f1) in $DEBS; carry '$GPU_DIR' to the GPU run"
}

run() {
  local out=${OUT:-$GPU_DIR/out}
  mkdir -p "$out"
  local report="$out/gpu_check.txt"
  exec > >(tee "$report") 2>&1
  echo "gpu_check: $(date -u +%FT%TZ) on $(hostname)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  local P=$PWD/$GPU_DIR/prefix
  rm -rf "$P" && mkdir -p "$P"
  for f in "$DEBS"/*.deb; do dpkg -x "$f" "$P"; done
  local torch_prefix nccl_lib
  torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  nccl_lib=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null || true)
  echo "torch $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)'), LibTorch at $torch_prefix, NCCL in ${nccl_lib:-?}"
  local arch=$P/usr/lib/x86_64-linux-gnu
  export OPAL_PREFIX=$P/usr
  export LD_LIBRARY_PATH="$arch:$arch/openmpi/lib:$arch/pmix2/lib:${nccl_lib}:${LD_LIBRARY_PATH:-}"
  export OMPI_MCA_mca_base_param_files=$P/etc/openmpi/openmpi-mca-params.conf
  export PMIX_MCA_mca_base_component_path=$arch/pmix2/lib/pmix
  export PKG_CONFIG_SYSROOT_DIR=$P PKG_CONFIG_PATH=$arch/pkgconfig
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
  [ -n "$nccl_lib" ] && export LOCALIST_NCCL_LIBRARY=$nccl_lib/libnccl.so.2
  local B=build-gpu
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOCALIST_CUDA=ON -DLOCALIST_USE_CCACHE=OFF \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$P/usr" -DCMAKE_INCLUDE_PATH=$P/usr/include -DCMAKE_LIBRARY_PATH=$arch \
    -DMPI_C_COMPILER=$P/usr/bin/mpicc.openmpi -DMPI_CXX_COMPILER=$P/usr/bin/mpicxx.openmpi \
    -DMPIEXEC_EXECUTABLE=$P/usr/bin/mpirun.openmpi -DOPENSSL_ROOT_DIR=$P/usr -DHDF5_ROOT=$P/usr \
    -DHDF5_INCLUDE_DIRS=$P/usr/include/hdf5/serial | grep -E "^--   |Error|error" || true
  time cmake --build $B -j "$(nproc)" --target localist localist_gpu_tests bench_train
  echo "--- libraries not found:"; ldd $B/localist | grep "not found" || echo "none"
  echo "--- localist info"; $B/localist info
  echo "--- gpu tests"; $B/tests/localist_gpu_tests || echo "gpu tests FAILED (exit $?)"

  echo "--- one rank, CUDA, bf16: 20 steps of the quickstart model"
  $B/localist prepare configs/quickstart.yaml > /dev/null
  $B/localist train configs/quickstart.yaml --set train.device=cuda --set train.precision=bf16 \
    --set train.steps=20 --set train.eval_every=0 --set run.dir="$GPU_DIR/runs/cuda1" 2>&1 | tail -3
  echo "--- two ranks on one GPU (NCCL must refuse with a clear message, exit non-zero)"
  set +e
  timeout 120 $P/usr/bin/mpirun.openmpi -np 2 $B/localist train configs/quickstart.yaml --set train.device=cuda \
    --set train.steps=2 --set run.dir="$GPU_DIR/runs/dup" > "$GPU_DIR/dup.log" 2>&1
  echo "exit $?"; grep -m3 -E "ncclCommInitRank|shares GPU|localist:" "$GPU_DIR/dup.log"
  set -e

  echo "--- GPT-2-124M shape (byte vocabulary, context 1024), bf16 autocast, AdamW"
  export LOCALIST_BENCH_DEVICE=cuda LOCALIST_BENCH_SHAPE=gpt2 LOCALIST_BENCH_BF16=1
  export LOCALIST_BENCH_BATCH=${LOCALIST_BENCH_BATCH:-16}
  local cpp py
  cpp=$($B/bench/bench_train 20 5 1)
  py=$(python3 bench/baseline_train.py 20 5 1)
  echo "$cpp"; echo "$py"
  python3 - "$cpp" "$py" <<'PY'
import re, sys
L, d, T, V = 12, 768, 1024, 258
flops_tok = 6 * (12 * L * d * d + V * d) + 12 * L * T * d  # training FLOPs per token
peak = 989e12  # H200 dense bf16 (spec); the device notes measured about 790e12 in practice
tps = lambda s: float(re.search(r"tokens/s (\d+)", s).group(1))
py = tps(sys.argv[2])
for line in sys.argv[1].splitlines() + [sys.argv[2]]:
    r = tps(line)
    print(f"{line.split(' ms/')[0]}: {r:,.0f} tokens/s, MFU {100 * r * flops_tok / peak:.1f}% (of 989 TFLOP/s), "
          f"{r / py:.2f}x plain PyTorch")
PY
  echo "gpu_check: done; report in $report"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: tools/gpu_check.sh prepare|run" >&2; exit 2 ;;
esac
