// SPDX-License-Identifier: Apache-2.0
// gtest_plain_main.cpp: GoogleTest entry point for suites that need no set-up.
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
