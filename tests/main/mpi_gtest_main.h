// SPDX-License-Identifier: Apache-2.0
// mpi_gtest_main.h: the world Communicator of an MPI GoogleTest binary whose main()
// is mpi_gtest_main.cpp (every rank runs the tests; the job fails if any rank fails).
#pragma once
#include <memory>

#include "comm/communicator.h"

namespace localist::test {
std::shared_ptr<Communicator> mpi_test_world();
}
