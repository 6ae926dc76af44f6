// SPDX-License-Identifier: Apache-2.0
// test_launch_env.cpp: rank and world size from mpirun, srun and PMIx environments,
// and loud errors for malformed or inconsistent values.
#include <gtest/gtest.h>

#include <map>

#include "comm/launch_env.h"
#include "core/error.h"

using namespace localist;

namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

}  // namespace

TEST(LaunchEnv, NoLauncher) {
  const LaunchEnv e = launch_env_detect(env_of({}));
  EXPECT_EQ(e.launcher, "none");
  EXPECT_EQ(e.world_size, 1);
}

TEST(LaunchEnv, MpirunWinsOverInheritedSlurm) {
  const LaunchEnv e = launch_env_detect(env_of({{"OMPI_COMM_WORLD_SIZE", "4"},
                                                {"OMPI_COMM_WORLD_RANK", "3"},
                                                {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                                {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                                {"SLURM_NTASKS", "1"},
                                                {"SLURM_PROCID", "0"},
                                                {"SLURM_STEP_ID", "0"}}));
  EXPECT_EQ(e.launcher, "mpirun");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
}

TEST(LaunchEnv, SrunStepAndBatchScript) {
  const LaunchEnv e = launch_env_detect(env_of({{"SLURM_STEP_ID", "0"},
                                                {"SLURM_PROCID", "1"},
                                                {"SLURM_STEP_NUM_TASKS", "2"},
                                                {"SLURM_NTASKS", "2"},
                                                {"SLURM_LOCALID", "1"},
                                                {"SLURM_STEP_TASKS_PER_NODE", "2"}}));
  EXPECT_EQ(e.launcher, "slurm");
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.world_size, 2);
  // In the batch script itself (no step), the process is not one of the tasks.
  EXPECT_EQ(launch_env_detect(env_of({{"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "0"}})).launcher, "none");
}

TEST(LaunchEnv, MalformedOrInconsistentIsAnError) {
  EXPECT_THROW(launch_env_detect(env_of({{"OMPI_COMM_WORLD_SIZE", "two"}})), Error);
  EXPECT_THROW(launch_env_detect(env_of({{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "2"}})), Error);
}

// srun --mpi=none would make each task a world of one (or abort inside MPI_Init):
// refused before MPI starts, naming the fix; a single task or a PMIx step is fine.
TEST(LaunchEnv, SrunWithoutAnMpiPluginIsRefused) {
  const std::map<std::string, std::string> step{
      {"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "1"}, {"SLURM_STEP_NUM_TASKS", "2"}};
  const LaunchEnv none = launch_env_detect(env_of(step));
  EXPECT_EQ(none.slurm_mpi, "none");
  try {
    launch_env_require_mpi(none);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("srun --mpi=pmix"), std::string::npos) << e.what();
  }
  auto with_pmix = step;
  with_pmix["SLURM_MPI_TYPE"] = "pmix";
  const LaunchEnv pmix = launch_env_detect(env_of(with_pmix));
  EXPECT_EQ(pmix.slurm_mpi, "pmix");
  EXPECT_NO_THROW(launch_env_require_mpi(pmix));
  const LaunchEnv one =
      launch_env_detect(env_of({{"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}));
  EXPECT_NO_THROW(launch_env_require_mpi(one));
  EXPECT_NO_THROW(launch_env_require_mpi(launch_env_detect(env_of({}))));
}
