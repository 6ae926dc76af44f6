// SPDX-License-Identifier: Apache-2.0
// mpi_gtest_main.cpp: GoogleTest main for tests under mpirun: starts MPI through
// comm/ (so the launcher check runs too), runs the tests on every rank and exits
// non-zero on every rank if any rank failed.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "comm/launch_env.h"
#include "comm/mpi_communicator.h"
#include "tests/main/mpi_gtest_main.h"

namespace localist::test {
namespace {
std::shared_ptr<Communicator> g_world;
}
std::shared_ptr<Communicator> mpi_test_world() { return g_world; }
}  // namespace localist::test

int main(int argc, char** argv) {
  using namespace localist;
  ::testing::InitGoogleTest(&argc, argv);
  test::g_world = mpi_world(launch_env_detect(), 60.0).world;
  const int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  auto f = at::full({1}, static_cast<int64_t>(failed), at::kLong);
  test::g_world->all_reduce(f, ReduceOp::kMax, "test results");
  test::g_world.reset();
  mpi_finalize();
  return static_cast<int>(f.item<int64_t>());
}
