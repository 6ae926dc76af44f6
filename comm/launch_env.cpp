// SPDX-License-Identifier: Apache-2.0
// launch_env.cpp: see launch_env.h. OpenMPI's variables win when both are present,
// because `mpirun` inside an sbatch allocation also inherits the batch step's SLURM_*.
#include "comm/launch_env.h"

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace localist {
namespace {

int read_int(const EnvLookup& env, const char* name, int def, bool* found = nullptr) {
  const char* v = env(name);
  if (found) *found = v != nullptr && *v != '\0';
  if (!v || !*v) return def;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1000000) {
    throw Error(std::string("environment variable ") + name + "='" + v + "' is not a valid count");
  }
  return static_cast<int>(x);
}

}  // namespace

LaunchEnv launch_env_detect(const EnvLookup& lookup) {
  EnvLookup env = lookup ? lookup : [](const char* n) -> const char* { return std::getenv(n); };
  LaunchEnv e;
  bool found = false;
  if (read_int(env, "OMPI_COMM_WORLD_SIZE", 1, &found), found) {
    e.launcher = "mpirun";
    e.world_size = read_int(env, "OMPI_COMM_WORLD_SIZE", 1);
    e.rank = read_int(env, "OMPI_COMM_WORLD_RANK", 0);
    e.local_rank = read_int(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0);
    e.local_size = read_int(env, "OMPI_COMM_WORLD_LOCAL_SIZE", 1);
  } else if (read_int(env, "SLURM_STEP_ID", 0, &found), found && env("SLURM_PROCID")) {
    // Inside an srun step (the batch script itself is not one of the job's tasks).
    e.launcher = "slurm";
    e.world_size = read_int(env, "SLURM_STEP_NUM_TASKS", read_int(env, "SLURM_NTASKS", 1));
    e.rank = read_int(env, "SLURM_PROCID", 0);
    e.local_rank = read_int(env, "SLURM_LOCALID", 0);
    const char* per_node = env("SLURM_STEP_TASKS_PER_NODE");
    e.local_size = per_node ? std::atoi(per_node) : 1;  // "2(x3)" reads as 2
    if (e.local_size < 1) e.local_size = 1;
    const char* plugin = env("SLURM_MPI_TYPE");
    e.slurm_mpi = plugin && *plugin ? plugin : "none";
  } else if (read_int(env, "PMIX_RANK", 0, &found), found) {
    e.launcher = "pmix";
    e.rank = read_int(env, "PMIX_RANK", 0);
    e.world_size = read_int(env, "PMIX_SIZE", e.rank + 1);
  }
  if (e.world_size < 1 || e.rank >= e.world_size || e.local_rank >= e.local_size) {
    throw Error("launcher environment (" + e.launcher + ") is inconsistent: rank " + std::to_string(e.rank) + " of " +
                std::to_string(e.world_size) + ", local rank " + std::to_string(e.local_rank) + " of " +
                std::to_string(e.local_size) + "; check how the job was started");
  }
  return e;
}

void launch_env_require_mpi(const LaunchEnv& env) {
  if (env.launcher == "slurm" && env.world_size > 1 && env.slurm_mpi == "none") {
    throw Error("srun started " + std::to_string(env.world_size) +
                " tasks without an MPI plugin (--mpi=none), so "
                "MPI cannot join them into one world; use `srun --mpi=pmix` (the only plugin Debian's OpenMPI "
                "accepts), set MpiDefault=pmix in slurm.conf, or run mpirun inside the allocation");
  }
}

}  // namespace localist
