// SPDX-License-Identifier: Apache-2.0
// in_process_group.h: the N-rank test double of Communicator (as PyTorch's c10d tests
// have): N ranks are N threads of one process; collectives meet in shared memory in
// call order, each bounded by the group's timeout like the MPI backend's, and a timeout
// names the ranks that did not arrive (the watchdog's verdict). Faults are injected per
// rank: the k-th communication call of a rank fails (throws) or stalls (never returns
// until the run ends). Limits: CPU tensors; for tests, not for training.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace localist {

struct CommFault {
  enum class Kind { kFail, kStall };
  int rank = -1;      // world rank of the faulty rank
  int64_t call = -1;  // its k-th communication call (1-based, over every group it is in)
  Kind kind = Kind::kFail;
};

// What one rank's body ended with.
struct RankOutcome {
  bool ok = true;
  bool timed_out = false;  // ended by a CommTimeout
  std::string error;       // the exception's message when !ok
};

// Runs body(rank's world communicator) on `size` threads and waits for all of them
// (a stalled rank is released, with an error, once every other rank has ended).
std::vector<RankOutcome> in_process_run(int size, const std::function<void(std::shared_ptr<Communicator>)>& body,
                                        double timeout_s = 10.0, std::vector<CommFault> faults = {});

}  // namespace localist
