// SPDX-License-Identifier: Apache-2.0
// deadline_guard.cpp: see deadline_guard.h. The message goes straight to stderr with
// write(2) (the logger may be the thing that is stuck) and the process ends with
// _Exit: no destructors, no atexit handlers, nothing that could block again.
#include "core/deadline_guard.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "core/error.h"

namespace localist {

DeadlineGuard::DeadlineGuard(std::string what, double seconds) {
  watchdog_ = std::thread([this, what = std::move(what), seconds] {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    if (done_.wait_until(lock, deadline, [this] { return disarmed_; })) return;
    const std::string line = "localist: error: " + what + " did not return within " +
                             std::to_string(static_cast<long long>(seconds)) +
                             " s (a rank of the job is stopped, stalled or never started); ending this rank\n";
    (void)!::write(2, line.data(), line.size());
    std::_Exit(kExitFailure);
  });
}

DeadlineGuard::~DeadlineGuard() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    disarmed_ = true;
  }
  done_.notify_all();
  watchdog_.join();
}

}  // namespace localist
