// SPDX-License-Identifier: Apache-2.0
// job_end.cpp: see job_end.h. The order matters: each step covers the window of the one
// before it. A rank stopped before the barrier times it out (abort: mpirun kills all); one
// stopped between the barrier and its MPI_Finalize leaves the others' finalize to time out
// (core/deadline_guard.h); one stopped after MPI_Finalize is seen by its host's first rank,
// and the host's first rank by a watcher process it forks after MPI_Finalize.
#include "launch/job_end.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
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

// Nobody watches the host's first rank once MPI is finalized: stopped then (SIGSTOP, a
// frozen process), it would keep mpirun waiting forever (found by the chaos test under
// CI's load: rank 0 stopped while it waited for the others' exit). A child forked here
// ends it with SIGKILL if it has not exited `bound_s` seconds later, so the launcher ends
// the job. The child uses async-signal-safe calls only (the parent had other threads).
void watch_own_exit(int rank, double bound_s) {
  char msg[320];
  const int n = std::snprintf(msg, sizeof msg,
                              "localist: rank %d did not exit within %.0f s after the job's end (stopped?); its "
                              "watcher ended it so that the launcher ends the job (the run itself is complete)\n",
                              rank, bound_s);
  const pid_t parent = ::getpid();
  if (::fork() != 0) return;  // the parent, or no watcher (fork failed): best effort
  const timespec tick = {0, 20 * 1000 * 1000};
  for (long i = 0; i < static_cast<long>(bound_s / 0.02); ++i) {
    if (::getppid() != parent) ::_exit(0);  // it exited: this process was re-parented
    ::nanosleep(&tick, nullptr);
  }
  if (::getppid() == parent) {
    if (n > 0) (void)!::write(2, msg, static_cast<size_t>(std::min<int>(n, sizeof msg - 1)));
    ::kill(parent, SIGKILL);
  }
  ::_exit(0);
}
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
  // Its own wait below is bounded by timeout_s; the watcher allows that and 5 s more.
  if (plan.local_rank == 0 && plan.world_size > 1) watch_own_exit(rank, plan.timeout_s + 5.0);
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
