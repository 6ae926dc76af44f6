// SPDX-License-Identifier: Apache-2.0
// test_nccl_library.cpp: the parts of the NCCL backend that run without a GPU: loading
// the library at run time fails with a one-line error that names the file (or the first
// missing symbol) and says what to do; the data plane for CPU tensors is the control
// plane itself, and for CUDA tensors on several ranks a missing NCCL is reported before
// any CUDA call; the CUDA toolkit's libnccl.so.2, where the build found nccl.h, loads and
// makes a unique id without a GPU or driver. (The collectives are tested by the gpu suite.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "comm/in_process_group.h"
#include "comm/nccl_communicator.h"
#include "comm/nccl_library.h"

using namespace localist;

TEST(NcclLibrary, AMissingFileIsNamedWithAHint) {
  const NcclLoad load = nccl_library_load("/nonexistent/libnccl.so.2");
  EXPECT_EQ(load.library, nullptr);
  EXPECT_NE(load.error.find("NCCL could not be loaded from '/nonexistent/libnccl.so.2'"), std::string::npos)
      << load.error;
  EXPECT_NE(load.error.find("LOCALIST_NCCL_LIBRARY="), std::string::npos) << load.error;
}

// Where the build found nccl.h (LOCALIST_TEST_NCCL_TOOLKIT) its library must load; elsewhere
// the test runs when some libnccl.so.2 is on the loader's path.
TEST(NcclLibrary, TheLibraryLoadsAndMakesAUniqueIdWithoutAGpu) {
  const NcclLoad load = nccl_library_load("libnccl.so.2");
#ifndef LOCALIST_TEST_NCCL_TOOLKIT
  if (!load.library) GTEST_SKIP() << "no libnccl.so.2 on this machine: " << load.error;
#endif
  ASSERT_NE(load.library, nullptr) << load.error;
  const NcclLibrary& nccl = *load.library;
  int version = 0;
  ASSERT_EQ(nccl.GetVersion(&version), ncclSuccess);
  EXPECT_EQ(version, nccl.version);
  EXPECT_GE(version, 21000) << "localist needs NCCL >= 2.10";
  // The file the loader chose, resolved: what `localist info` prints.
  EXPECT_EQ(nccl.path.front(), '/') << nccl.path;
  EXPECT_TRUE(std::filesystem::is_regular_file(nccl.path)) << nccl.path;
  ncclUniqueId a{}, b{};
  ASSERT_EQ(nccl.GetUniqueId(&a), ncclSuccess) << nccl.GetErrorString(nccl.GetUniqueId(&a));
  ASSERT_EQ(nccl.GetUniqueId(&b), ncclSuccess);
  EXPECT_TRUE(std::any_of(a.internal, a.internal + sizeof(a.internal), [](char c) { return c != 0; }));
  EXPECT_FALSE(std::equal(a.internal, a.internal + sizeof(a.internal), b.internal)) << "two ids, the same bytes";
  std::printf("NCCL %d from %s: unique id made without a GPU\n", version, nccl.path.c_str());
}

TEST(NcclLibrary, ALibraryWithoutNcclsSymbolsIsRefused) {
  const NcclLoad load = nccl_library_load("libm.so.6");
  EXPECT_EQ(load.library, nullptr);
  EXPECT_NE(load.error.find("'libm.so.6' has no symbol ncclGetVersion"), std::string::npos) << load.error;
}

TEST(NcclLibrary, TheDataPlaneIsMpiForCpuAndNcclForCudaWithAClearErrorWhenItIsMissing) {
  // Before the process loads NCCL for the first time: point it at a file that is not there.
  setenv("LOCALIST_NCCL_LIBRARY", "/nonexistent/libnccl.so.2", 1);
  const auto one = local_communicator();
  EXPECT_EQ(data_plane_for(one, at::Device(at::kCPU)), one);
  EXPECT_EQ(data_plane_for(one, at::Device(at::kCUDA, 0)), one) << "one rank needs no data plane";
  const auto out = in_process_run(2, [](std::shared_ptr<Communicator> c) {
    EXPECT_EQ(data_plane_for(c, at::Device(at::kCPU)), c);
    data_plane_for(c, at::Device(at::kCUDA, 0));
  });
  for (const auto& o : out) {
    ASSERT_FALSE(o.ok);
    EXPECT_NE(o.error.find("train.device cuda with 2 ranks: NCCL could not be loaded"), std::string::npos) << o.error;
  }
}
