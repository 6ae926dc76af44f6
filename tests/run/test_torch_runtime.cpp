// SPDX-License-Identifier: Apache-2.0
// test_torch_runtime.cpp: LibTorch runs on a fast BLAS and the fused kernels call the
// same one. LibTorch's build settings name the BLAS; where it is MKL (the PyPI wheel), the
// sgemm_ this process resolves must live in the library that holds LibTorch's own code.
#include <ATen/Version.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <climits>
#include <cstdlib>

#include "run/torch_runtime.h"

TEST(Machine, LibTorchAndTheFusedKernelsUseOneFastBlas) {
  const localist::TorchRuntimeInfo info = localist::torch_runtime_info();
  EXPECT_FALSE(info.torch_version.empty());
  ASSERT_FALSE(info.blas.empty()) << at::show_config();
  EXPECT_FALSE(info.blas_is_reference) << info.blas_library << " is a reference BLAS";
  ASSERT_FALSE(info.blas_library.empty()) << "sgemm_ resolved to no library";
  if (info.blas == "mkl") {
    Dl_info torch{};
    ASSERT_NE(dladdr(reinterpret_cast<const void*>(&at::show_config), &torch), 0);
    char resolved[PATH_MAX];
    ASSERT_NE(realpath(torch.dli_fname, resolved), nullptr) << torch.dli_fname;
    EXPECT_EQ(info.blas_library, resolved) << "the fused kernels' sgemm_ is not LibTorch's MKL";
  }
}
