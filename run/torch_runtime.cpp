// SPDX-License-Identifier: Apache-2.0
// torch_runtime.cpp: see torch_runtime.h. Uses only the light torch headers; the build
// settings come from at::show_config(), the BLAS library from where sgemm_ resolves.
#include "run/torch_runtime.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <dlfcn.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <thread>

#include "model/blas_gemm.h"

namespace localist {
namespace {

// "KEY=value" from show_config()'s "Build settings:" line ("" when absent).
std::string build_setting(const std::string& config, const std::string& key) {
  const std::string tag = key + "=";
  size_t at = config.find(", " + tag);
  at = at == std::string::npos ? config.find(" " + tag) : at;
  if (at == std::string::npos) return "";
  at = config.find(tag, at) + tag.size();
  const size_t end = config.find_first_of(", \n", at);
  return config.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

std::string library_of(const void* symbol) {
  Dl_info where{};
  if (!dladdr(symbol, &where) || !where.dli_fname) return "";
  char resolved[PATH_MAX];
  return realpath(where.dli_fname, resolved) ? resolved : where.dli_fname;
}

}  // namespace

TorchRuntimeInfo torch_runtime_info() {
  TorchRuntimeInfo info;
  info.torch_version = TORCH_VERSION;
  const std::string config = at::show_config();
  info.compiled_cuda = build_setting(config, "CUDA_VERSION");
  info.compiled_cudnn = build_setting(config, "CUDNN_VERSION");
  info.blas = build_setting(config, "BLAS_INFO");
  info.intra_op_threads = at::get_num_threads();
  info.cuda_available = torch::cuda::is_available();
  info.cuda_devices = info.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
  info.blas_library = library_of(reinterpret_cast<const void*>(&sgemm_));
  // Debian's reference BLAS lives in .../blas/libblas.so.3; MKL (inside libtorch_cpu),
  // OpenBLAS and BLIS elsewhere.
  info.blas_is_reference =
      info.blas_library.find("/blas/libblas.so") != std::string::npos || info.blas == "generic" || info.blas == "blas";
  return info;
}

void torch_set_threads(int threads) { at::set_num_threads(threads < 1 ? 1 : threads); }

int rank_threads(int64_t configured, int local_ranks) {
  if (configured >= 1) return static_cast<int>(configured);
  if (const char* omp = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(omp);
    if (n >= 1) return n;
  }
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, cores / std::max(1, local_ranks));
}

}  // namespace localist
