// SPDX-License-Identifier: Apache-2.0
// deadline_guard.h: a bound on a blocking call that has none of its own (MPI_Init,
// MPI_Finalize, the first collectives: MPI waits there forever for a peer that is
// stopped or never starts). While a guard lives, a watchdog thread waits; if the
// deadline passes first it prints one line naming the call and ends the process with
// status 1, so the launcher (mpirun, srun) tears the job down instead of hanging.
#pragma once
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace localist {

class DeadlineGuard {
 public:
  // what: the call and why it can hang, for the message; seconds > 0.
  DeadlineGuard(std::string what, double seconds);
  ~DeadlineGuard();  // disarms
  DeadlineGuard(const DeadlineGuard&) = delete;
  DeadlineGuard& operator=(const DeadlineGuard&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  bool disarmed_ = false;
  std::thread watchdog_;
};

}  // namespace localist
