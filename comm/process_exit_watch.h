// SPDX-License-Identifier: Apache-2.0
// process_exit_watch.h: waits, with a bound, for other processes of this host to exit
// (read from /proc; a zombie counts as exited). The end of a job uses it: after
// MPI_Finalize no collective can notice a peer stopped on its way out, and mpirun waits
// for such a peer forever. Limits: Linux only; same host only; pids, not process handles.
#pragma once
#include <string>
#include <vector>

namespace localist {

struct ProcessStillThere {
  int pid = 0;
  char state = '?';  // /proc/PID/stat's state: T stopped, D disk sleep, R running, ...
};

// Polls until every pid in `pids` has exited or `timeout_s` has passed; returns those
// still there at the end (empty when all exited).
std::vector<ProcessStillThere> wait_for_processes_to_exit(const std::vector<int>& pids, double timeout_s);

// The state letter of /proc/PID/stat, or 0 when the process is gone or a zombie.
char process_state(int pid);

}  // namespace localist
