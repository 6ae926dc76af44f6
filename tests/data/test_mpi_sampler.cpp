// SPDX-License-Identifier: Apache-2.0
// test_mpi_sampler.cpp: under a real mpirun, the launcher environment localist reads
// agrees with MPI's own rank and size, and the rows each data-parallel rank draws,
// gathered over MPI, are exactly the single-process global sample order.
// Test code may call MPI directly; library code above comm/ never does.
#include <gtest/gtest.h>
#include <mpi.h>

#include "comm/launch_env.h"
#include "data/sampler.h"

using namespace localist;

namespace {
int mpi_rank() {
  int r;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int mpi_size() {
  int s;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}
}  // namespace

TEST(MpiLaunch, EnvironmentMatchesMpi) {
  const LaunchEnv env = launch_env_detect();
  EXPECT_EQ(env.launcher, "mpirun");
  EXPECT_EQ(env.rank, mpi_rank());
  EXPECT_EQ(env.world_size, mpi_size());
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local_rank;
  MPI_Comm_rank(node, &local_rank);
  EXPECT_EQ(env.local_rank, local_rank);
  MPI_Comm_free(&node);
}

TEST(MpiSampler, GatheredRankSlicesEqualTheGlobalOrder) {
  const int size = mpi_size(), rank = mpi_rank();
  const int64_t batch = 12;  // divisible by 1, 2, 3 and 4 ranks
  const GlobalSampler s({{"a", 90000, 1.0, 0}, {"b", 7000, 2.0, 0}, {"c", 30000, 1.0, 10}}, 128, 2024, batch);
  for (int64_t step = 0; step < 30; ++step) {
    std::vector<int64_t> mine;
    for (const SampleRef& r : s.rank_samples(step, rank, size)) {
      mine.push_back(r.source);
      mine.push_back(static_cast<int64_t>(r.start));
    }
    std::vector<int64_t> all(2 * batch);
    MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_INT64_T, all.data(), static_cast<int>(mine.size()),
                  MPI_INT64_T, MPI_COMM_WORLD);
    for (int64_t i = 0; i < batch; ++i) {
      const SampleRef ref = s.sample(step, i);
      ASSERT_EQ(all[2 * i], ref.source) << "step " << step << " index " << i;
      ASSERT_EQ(all[2 * i + 1], static_cast<int64_t>(ref.start)) << "step " << step << " index " << i;
    }
  }
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  // Only rank 0 prints the GoogleTest report; every rank's failures still fail the exit code.
  if (mpi_rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS() != 0, any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any_failed;
}
