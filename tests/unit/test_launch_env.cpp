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
  const LaunchEnv e = launch_env_detect(env_of({{"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_RANK", "3"},
                                                {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                                {"SLURM_NTASKS", "1"}, {"SLURM_PROCID", "0"}, {"SLURM_STEP_ID", "0"}}));
  EXPECT_EQ(e.launcher, "mpirun");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
}

TEST(LaunchEnv, SrunStepAndBatchScript) {
  const LaunchEnv e = launch_env_detect(env_of({{"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "1"}, {"SLURM_STEP_NUM_TASKS", "2"},
                                                {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "1"}, {"SLURM_STEP_TASKS_PER_NODE", "2"}}));
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
