// SPDX-License-Identifier: Apache-2.0
// process_exit_watch.cpp: see process_exit_watch.h. Polls every 20 ms: exits at the end
// of a job come within milliseconds of each other, so the wait is short when all is well.
#include "comm/process_exit_watch.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <unistd.h>

namespace localist {

namespace {

// State and start time from /proc/PID/stat; false when it cannot be read.
bool read_stat(const std::string& path, char* state, unsigned long long* start_ticks) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return false;
  // The command name (field 2) is in parentheses and may hold spaces: the fields after
  // the last ')' are state (3), then 4..; the start time is field 22.
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return false;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  rest >> *state;
  for (int f = 4; f < 22 && (rest >> field); ++f) {
  }
  return static_cast<bool>(rest >> *start_ticks);
}

}  // namespace

ProcessId process_id_of(int pid) {
  ProcessId p;
  p.pid = pid;
  char state = 0;
  read_stat("/proc/" + std::to_string(pid) + "/stat", &state, &p.start_ticks);
  return p;
}

ProcessId this_process() { return process_id_of(static_cast<int>(::getpid())); }

char process_state(const ProcessId& p) {
  char state = 0;
  unsigned long long start = 0;
  if (!read_stat("/proc/" + std::to_string(p.pid) + "/stat", &state, &start)) return 0;
  if (start != p.start_ticks) return 0;
  return (state == 'Z' || state == 'X' || state == 'x') ? 0 : state;
}

std::vector<ProcessStillThere> wait_for_processes_to_exit(const std::vector<ProcessId>& procs, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::vector<ProcessStillThere> left;
  for (;;) {
    left.clear();
    for (const ProcessId& p : procs) {
      const char s = process_state(p);
      if (s != 0) left.push_back({p.pid, s});
    }
    if (left.empty() || std::chrono::steady_clock::now() >= deadline) return left;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace localist
