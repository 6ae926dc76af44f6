// SPDX-License-Identifier: Apache-2.0
// launch_env.h: what the launcher says about this process: rank, world size, local
// rank, read from OpenMPI's mpirun (OMPI_COMM_WORLD_*), Slurm's srun (SLURM_* inside
// a job step) or PMIx. Read before MPI starts (log file names, config checks); the MPI
// bootstrap later compares it with MPI's own view and fails loudly on a mismatch.
#pragma once
#include <functional>
#include <string>

namespace localist {

struct LaunchEnv {
  std::string launcher = "none";  // none | mpirun | slurm | pmix
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_size = 1;
  std::string slurm_mpi;  // srun only: its --mpi plugin (SLURM_MPI_TYPE), "none" when it set none
};

using EnvLookup = std::function<const char*(const char*)>;

// Throws localist::Error if a variable is present but malformed or inconsistent.
LaunchEnv launch_env_detect(const EnvLookup& lookup = nullptr);

// Throws localist::Error, before MPI starts, when the launch cannot give MPI a world:
// several srun tasks without an MPI plugin would each become a world of one (or abort
// inside MPI_Init with an OpenMPI message that does not say why).
void launch_env_require_mpi(const LaunchEnv& env);

}  // namespace localist
