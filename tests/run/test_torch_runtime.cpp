// SPDX-License-Identifier: Apache-2.0
// test_torch_runtime.cpp: the set-up step leaves LibTorch on a fast BLAS. The library
// LibTorch resolved is compared with the one Debian's alternatives select
// (update-alternatives, an independent view) and must not be the reference BLAS.
#include <gtest/gtest.h>

#include <climits>
#include <cstdlib>

#include "run/torch_runtime.h"
#include "tests/test_util.h"

TEST(Machine, LibTorchUsesTheSelectedFastBlas) {
  const localist::TorchRuntimeInfo info = localist::torch_runtime_info();
  EXPECT_FALSE(info.torch_version.empty());
  ASSERT_FALSE(info.blas_library.empty()) << "libtorch loaded no libblas.so";
  EXPECT_FALSE(info.blas_is_reference) << info.blas_library << " is the reference BLAS; run tools/setup.sh";
  auto alt = localist::test::run_command(
      "update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | "
      "awk '/^Value:/{print $2}'");
  if (alt.status == 0 && !alt.out.empty()) {
    alt.out.pop_back();  // newline
    char resolved[PATH_MAX];
    ASSERT_NE(realpath(alt.out.c_str(), resolved), nullptr) << alt.out;
    EXPECT_EQ(info.blas_library, resolved);
  }
}
