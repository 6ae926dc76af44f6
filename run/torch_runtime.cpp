// SPDX-License-Identifier: Apache-2.0
// torch_runtime.cpp: see torch_runtime.h. Uses only the light torch headers.
#include "run/torch_runtime.h"

#include <ATen/Parallel.h>
#include <link.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <climits>
#include <cstdlib>
#include <cstring>

namespace localist {
namespace {

int find_blas(struct dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::string*>(data);
  const char* name = info->dlpi_name;
  if (name && std::strstr(name, "libblas.so")) {
    char resolved[PATH_MAX];
    *out = realpath(name, resolved) ? resolved : name;
    return 1;
  }
  return 0;
}

}  // namespace

TorchRuntimeInfo torch_runtime_info() {
  TorchRuntimeInfo info;
  info.torch_version = TORCH_VERSION;
  info.intra_op_threads = at::get_num_threads();
  info.cuda_available = torch::cuda::is_available();
  info.cuda_devices = info.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
  dl_iterate_phdr(find_blas, &info.blas_library);
  // Debian's reference BLAS lives in .../blas/libblas.so.3; OpenBLAS, BLIS and MKL elsewhere.
  info.blas_is_reference = info.blas_library.find("/blas/libblas.so") != std::string::npos;
  return info;
}

void torch_set_threads(int threads) { at::set_num_threads(threads < 1 ? 1 : threads); }

}  // namespace localist
