#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# setup.sh: installs the Debian packages localist builds and tests with, and the project
# venv (.venv, or LOCALIST_VENV) holding LibTorch 2.11.0: the PyPI torch wheel (cu130)
# without the NVIDIA wheels the CUDA 13.0 toolkit already provides, plus the Python side
# (benchmark baseline, h5py). chromium (headless) is for the audit report's browser test.
# Idempotent and quick when everything is present. Needs root (or sudo), apt and PyPI.
# Limits: Debian/Ubuntu only; other systems install the same libraries by hand
# (see docs/install.md).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config clang-format
  python3-venv
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev
  libsentencepiece-dev libssl-dev libre2-dev
  gnuplot-nox
  python3-h5py
  slurm-wlm
  fortunes-de
  chromium fonts-dejavu-core
)

log() { printf 'setup: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@";
  elif command -v sudo >/dev/null 2>&1; then sudo "$@";
  else log "error: need root (or sudo) to run: $*"; exit 1; fi
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  log "error: this script needs Debian's apt/dpkg; on other systems install the packages listed in docs/install.md"
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${#missing[@]} missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A stale package index makes installs fail with 404s: refresh once if needed.
  if ! as_root apt-get install -y --no-install-recommends "${missing[@]}"; then
    as_root apt-get update
    as_root apt-get install -y --no-install-recommends "${missing[@]}"
  fi
else
  log "all ${#PACKAGES[@]} packages present"
fi

# LibTorch 2.11.0 (cu130), pinned: the GPU machine's version, built against the CUDA 13.0
# this image's toolkit provides. --no-deps skips ~2.7 GB of NVIDIA wheels; the three
# libraries the toolkit lacks (libcusparseLt, libnvshmem_host, libcufile) come pinned.
VENV=${LOCALIST_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.venv}
TORCH_PIN=2.11.0
NVIDIA_PINS=(nvidia-cusparselt-cu13==0.8.0 nvidia-nvshmem-cu13==3.4.5 nvidia-cufile==1.15.1.6)
PY_PINS=('typing-extensions>=4.10' 'filelock' 'sympy>=1.13.3' 'networkx>=2.5.1' 'jinja2' 'fsspec>=0.8.5'
         'setuptools<82' 'numpy<3' 'h5py>=3.8')
# What an exported model is checked with (docs/export.md): transformers and its loaders, pinned.
HF_PINS=(transformers==5.25.0 safetensors==0.8.0 tokenizers==0.23.3 huggingface_hub==2.4.0 sentencepiece==0.2.3)
# What reads the run's TensorBoard event files in the tests (tools/check_tensorboard.py).
TB_PINS=(tensorboard==2.21.0)
if "$VENV/bin/python" -c "import torch, h5py, numpy; assert torch.__version__.split('+')[0] == '$TORCH_PIN'" 2>/dev/null; then
  log "venv: $VENV (torch $TORCH_PIN)"
else
  log "venv: installing torch==$TORCH_PIN into $VENV (~770 MB from PyPI)"
  /usr/bin/python3 -m venv "$VENV"
  # torch last: installed first, its unmet NVIDIA requirements make pip print an ERROR
  # block at the next install (harmless, alarming in a CI log).
  if ! "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PINS[@]}" "${HF_PINS[@]}" "${TB_PINS[@]}" ||
     ! "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "torch==$TORCH_PIN" "${NVIDIA_PINS[@]}"; then
    log "error: could not install torch==$TORCH_PIN from PyPI into $VENV (is PyPI reachable?); run tools/setup.sh again"
    exit 1
  fi
  "$VENV/bin/python" -c "import torch; print('setup: venv: torch', torch.__version__, 'CUDA', torch.version.cuda)"
fi
if ! "$VENV/bin/python" -c "import sentencepiece, transformers; assert transformers.__version__ == '${HF_PINS[0]#*==}'" 2>/dev/null; then
  log "venv: installing ${HF_PINS[*]} (~30 MB)"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${HF_PINS[@]}" ||
    { log "error: could not install ${HF_PINS[0]} from PyPI into $VENV; run tools/setup.sh again"; exit 1; }
fi

if ! "$VENV/bin/python" -c "import tensorboard; assert tensorboard.__version__ == '${TB_PINS[0]#*==}'" 2>/dev/null; then
  log "venv: installing ${TB_PINS[*]} (~28 MB)"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${TB_PINS[@]}" 'setuptools<82' ||
    { log "error: could not install ${TB_PINS[0]} from PyPI into $VENV; run tools/setup.sh again"; exit 1; }
fi

# The pool configs' corpora (German fortunes, Shakespeare split for held-out text) are
# made, not committed: make them here so `localist prepare configs/pool.yaml` works.
bash "$(dirname "$0")/pool_corpora.sh" >/dev/null && log "pool corpora: corpora/generated/"

