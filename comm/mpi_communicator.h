// SPDX-License-Identifier: Apache-2.0
// mpi_communicator.h: the MPI backend of Communicator (CPU tensors; also the control
// plane). Every operation is posted non-blocking and polled against the group's
// timeout, so a peer that never arrives becomes a CommTimeout instead of a hang.
// mpi_world() starts MPI and checks its view of the world against the launcher's.
#pragma once
#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "comm/launch_env.h"
#include "comm/process_exit_watch.h"

namespace localist {

struct MpiWorld {
  std::shared_ptr<Communicator> world;
  int local_rank = 0;  // from MPI's shared-memory split (device = local rank)
  int local_size = 1;
  std::vector<ProcessId> node_peers;  // the other ranks of this host (for the end of the job)
};

// Initialises MPI once per process. Throws localist::Error when MPI's rank/size
// disagree with what the launcher's environment says (e.g. a silent world of one).
MpiWorld mpi_world(const LaunchEnv& env, double timeout_s);

// Finalises MPI if this process initialised it (call once, after the last operation).
// Bounded by timeout_s (core/deadline_guard.h): past it, this rank ends with status 1.
void mpi_finalize(double timeout_s = 60.0);

}  // namespace localist
