// SPDX-License-Identifier: Apache-2.0
// job_end.cpp: see job_end.h. The order matters: each step covers the window of the one
// before it. A rank stopped before the barrier times it out (abort: mpirun kills all); one
// stopped between the barrier and its MPI_Finalize leaves the others' finalize to time out
// (core/deadline_guard.h); one stopped after MPI_Finalize is seen by its host's first rank.
#include "launch/job_end.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "comm/mpi_communicator.h"
#include "comm/process_exit_watch.h"
#include "core/error.h"
#include "run/fault_injection.h"

namespace localist {
namespace {
bool g_skip_teardown = false;
}  // namespace

void job_end(JobEndPlan plan) {
  const FaultInjection fault = fault_injection_from_env();
  const int rank = plan.world->rank();
  fault_maybe_stop_at_exit(fault, rank, "end-barrier");
  try {
    plan.world->barrier("the end of training, before MPI_Finalize");
  } catch (const CommTimeout& e) {
    spdlog::error("{}", e.what());
    plan.world->abort(kExitFailure);
  }
  fault_maybe_stop_at_exit(fault, rank, "finalize");
  if (auto l = spdlog::default_logger()) l->flush();
  plan.world.reset();
  mpi_finalize(plan.timeout_s);
  fault_maybe_stop_at_exit(fault, rank, "exit");
  g_skip_teardown = true;
  if (plan.local_rank != 0 || plan.node_peers.empty()) return;
  const auto left = wait_for_processes_to_exit(plan.node_peers, plan.timeout_s);
  if (left.empty()) return;
  std::string list;
  for (const auto& p : left) {
    list += (list.empty() ? "" : ", ") + std::to_string(p.pid) + (p.state == 'T' ? " (stopped)" : "");
  }
  // Straight to stderr: logging may already be shut down; a non-zero exit makes the
  // launcher end the job, the stuck ranks included.
  std::fprintf(stderr,
               "localist: rank %d: %zu rank(s) of this host did not exit within %.0f s after the job's end "
               "(pid %s); exiting with status 1 so that the launcher ends them (the run itself is complete)\n",
               rank, left.size(), plan.timeout_s, list.c_str());
  std::fflush(stderr);
  std::_Exit(kExitFailure);
}

bool job_end_skip_teardown() { return g_skip_teardown; }

}  // namespace localist
