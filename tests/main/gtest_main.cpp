// SPDX-License-Identifier: Apache-2.0
// gtest_main.cpp: GoogleTest entry point for the unit suite; silences HDF5's own
// error printing (the code under test reports HDF5 errors itself).
#include <gtest/gtest.h>

#include "data/token_shard.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  localist::hdf5_quiet();
  return RUN_ALL_TESTS();
}
