// SPDX-License-Identifier: Apache-2.0
// process_exit_watch.h: waits, with a bound, for other processes of this host to exit
// (read from /proc; a zombie counts as exited). The end of a job uses it: after
// MPI_Finalize no collective can notice a peer stopped on its way out, and mpirun waits
// for such a peer forever. Limits: Linux only; same host only; pids, not process handles.
#pragma once
#include <string>
#include <vector>

namespace localist {

// A process named by its pid and its start time (/proc/PID/stat field 22, clock ticks
// since boot): a pid reused by another process, or one seen from another pid namespace,
// does not match.
struct ProcessId {
  int pid = 0;
  unsigned long long start_ticks = 0;
};

struct ProcessStillThere {
  int pid = 0;
  char state = '?';  // /proc/PID/stat's state: T stopped, D disk sleep, R running, ...
};

// The id of process `pid` now (start time 0 when it cannot be read), and this process's.
ProcessId process_id_of(int pid);
ProcessId this_process();

// Polls until every process in `procs` has exited or `timeout_s` has passed; returns
// those still there at the end (empty when all exited).
std::vector<ProcessStillThere> wait_for_processes_to_exit(const std::vector<ProcessId>& procs, double timeout_s);

// The state letter of /proc/PID/stat, or 0 when the process is gone, a zombie, or
// another process (its start time differs).
char process_state(const ProcessId& p);

}  // namespace localist
