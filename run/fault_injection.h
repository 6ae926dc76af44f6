// SPDX-License-Identifier: Apache-2.0
// fault_injection.h: the failure tests' hooks (docs/operations.md), read from the
// environment: LOCALIST_TEST_FAULT="stall:rank=R:step=S" makes rank R stop before step
// S; "kill:rank=R:step=S" kills it; "ckptkill:rank=R:step=S:at=P" kills rank R inside
// the checkpoint of step S at point P (directory, rank-file, before-index, after-index);
// "signal:rank=R:step=S" sends SIGUSR1 to rank R itself before step S (a preemption);
// "exitstop:rank=R:at=P" makes rank R SIGSTOP itself at the job's end (launch/job_end.h)
// at P: end-barrier (before the last barrier), finalize (before MPI_Finalize), exit (after).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace localist {

struct FaultInjection {
  std::string kind;  // "", stall, kill, signal, ckptkill or exitstop
  int rank = -1;
  int64_t step = -1;
  std::string at;  // ckptkill and exitstop only
};
FaultInjection fault_injection_from_env();
// Before step `step` on world rank `rank`: stalls, kills or signals when the fault says so.
void fault_maybe_trigger(const FaultInjection& fault, int rank, int64_t step);
// At point `point` of the job's end on world rank `rank`: stops the process when the fault says so.
void fault_maybe_stop_at_exit(const FaultInjection& fault, int rank, const std::string& point);
// The checkpoint writer's point callback for rank `rank` at `step` (empty when the fault is another).
std::function<void(const std::string&)> fault_checkpoint_hook(const FaultInjection& fault, int rank, int64_t step);
// LOCALIST_TEST_REMAP_STEP=S (tests): under block parallelism, every block moves to the
// next BP rank at step S, parameters and optimizer moments included; -1 when unset.
int64_t forced_remap_step_from_env();

}  // namespace localist
