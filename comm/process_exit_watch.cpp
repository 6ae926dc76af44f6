// SPDX-License-Identifier: Apache-2.0
// process_exit_watch.cpp: see process_exit_watch.h. Polls every 20 ms: exits at the end
// of a job come within milliseconds of each other, so the wait is short when all is well.
#include "comm/process_exit_watch.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

namespace localist {

char process_state(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return 0;
  // The command name (field 2) is in parentheses and may hold spaces: the state follows
  // the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return 0;
  const char state = line[close + 2];
  return (state == 'Z' || state == 'X' || state == 'x') ? 0 : state;
}

std::vector<ProcessStillThere> wait_for_processes_to_exit(const std::vector<int>& pids, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::vector<ProcessStillThere> left;
  for (;;) {
    left.clear();
    for (const int pid : pids) {
      const char s = process_state(pid);
      if (s != 0) left.push_back({pid, s});
    }
    if (left.empty() || std::chrono::steady_clock::now() >= deadline) return left;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace localist
