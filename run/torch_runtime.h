// SPDX-License-Identifier: Apache-2.0
// torch_runtime.h: facts about the LibTorch this process runs on (version, threads,
// CUDA devices, which BLAS libtorch resolved) and the per-rank thread setting.
// The BLAS check exists because Debian's default reference BLAS makes LibTorch's
// matmuls ~37x slower than OpenBLAS with no other symptom.
#pragma once
#include <string>

namespace localist {

struct TorchRuntimeInfo {
  std::string torch_version;
  int intra_op_threads = 1;
  bool cuda_available = false;
  int cuda_devices = 0;
  std::string blas_library;  // resolved path of the loaded libblas, or "" if none found
  bool blas_is_reference = false;
};

TorchRuntimeInfo torch_runtime_info();

// Sets LibTorch's intra-op threads (>= 1).
void torch_set_threads(int threads);

}  // namespace localist
