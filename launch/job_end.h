// SPDX-License-Identifier: Apache-2.0
// job_end.h: how a multi-rank job ends, so that a rank stopped on its way out (SIGSTOP,
// a frozen node) cannot leave the job hanging: a timed world barrier, a bounded
// MPI_Finalize, then this host's first rank waits (bounded) for the host's other ranks
// to exit, a watcher process ends the host's first rank if it does not exit in time, and
// every rank leaves with _Exit (no slow static teardown). Limit: a first rank stopped
// between MPI_Finalize's return and the watcher's fork (microseconds) is waited for by mpirun.
#pragma once
#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "comm/process_exit_watch.h"

namespace localist {

struct JobEndPlan {
  std::shared_ptr<Communicator> world;  // released here, before MPI_Finalize
  int local_rank = 0;
  int world_size = 1;  // the job's ranks: one alone has no launcher teardown to hang
  std::vector<ProcessId> node_peers;
  double timeout_s = 60.0;
};

// The barrier, MPI_Finalize and the host's exit watch. Ends the process with status 1
// (one line on stderr) when a rank does not arrive or does not exit in time; returns
// otherwise, and from then on job_end_skip_teardown() is true.
void job_end(JobEndPlan plan);

// True once job_end() returned: main() then flushes and calls _Exit.
bool job_end_skip_teardown();

}  // namespace localist
