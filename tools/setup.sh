#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# setup.sh: installs the Debian packages localist builds and tests with, and makes
# LibTorch use OpenBLAS instead of the reference BLAS (37x slower matmuls).
# chromium (headless) is for the audit report's browser test; fonts-dejavu-core draws its text.
# Idempotent and quick when everything is present. Needs root (or sudo) and apt.
# Limits: Debian/Ubuntu only; other systems install the same libraries by hand
# (see docs/install.md).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config clang-format
  libtorch-dev libopenblas0-pthread libblas-dev libsleef-dev
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

# LibTorch calls whatever libblas.so.3 Debian's alternatives select; the default
# reference BLAS runs a 1024^2 matmul at ~3 GFLOP/s, OpenBLAS at ~125.
alt=libblas.so.3-$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
current=$(update-alternatives --query "$alt" 2>/dev/null | awk '/^Value:/{print $2}')
openblas=$(update-alternatives --query "$alt" 2>/dev/null | awk '/^Alternative:/{print $2}' | grep openblas | head -n1 || true)
if [ -z "$openblas" ]; then
  log "error: no OpenBLAS alternative for $alt after installing libopenblas0-pthread"
  exit 1
fi
if [ "$current" != "$openblas" ]; then
  log "selecting OpenBLAS for LibTorch ($current -> $openblas)"
  as_root update-alternatives --set "$alt" "$openblas"
else
  log "BLAS: $current"
fi

# The pool configs' corpora (German fortunes, Shakespeare split for held-out text) are
# made, not committed: make them here so `localist prepare configs/pool.yaml` works.
bash "$(dirname "$0")/pool_corpora.sh" >/dev/null && log "pool corpora: corpora/generated/"

