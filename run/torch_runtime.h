// SPDX-License-Identifier: Apache-2.0
// torch_runtime.h: facts about the LibTorch this process runs on (version, the CUDA it
// was compiled with, threads, CUDA devices, which BLAS its CPU matmuls and the fused
// kernels' sgemm_ call) and the per-rank thread setting. The BLAS check exists because a
// reference BLAS makes matmuls ~37x slower with no other symptom.
#pragma once
#include <string>

namespace localist {

struct TorchRuntimeInfo {
  std::string torch_version;
  std::string compiled_cuda;  // "13.0" for a CUDA LibTorch, "" for a CPU-only one
  std::string compiled_cudnn;
  int intra_op_threads = 1;
  bool cuda_available = false;
  int cuda_devices = 0;
  std::string blas;          // LibTorch's build setting BLAS_INFO: "mkl", "open", ...
  std::string blas_library;  // the library the sgemm_ this process calls comes from
  bool blas_is_reference = false;
};

TorchRuntimeInfo torch_runtime_info();

// Sets LibTorch's intra-op threads (>= 1); MKL's follow them.
void torch_set_threads(int threads);

// A rank's threads: `configured` when >= 1; 0 (auto): OMP_NUM_THREADS when set (the
// launchers set it to the rank's share), else the hardware threads / ranks on the node.
int rank_threads(int64_t configured, int local_ranks);

}  // namespace localist
