// SPDX-License-Identifier: Apache-2.0
// process_memory.cpp: see process_memory.h.
#include "core/process_memory.h"

#include <fstream>
#include <sstream>
#include <string>

namespace localist {

ProcessMemory process_memory() {
  ProcessMemory m;
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key;
    int64_t kb = 0;
    fields >> key >> kb;
    if (key == "VmRSS:") m.rss_bytes = kb * 1024;
    if (key == "VmHWM:") m.peak_rss_bytes = kb * 1024;
  }
  return m;
}

}  // namespace localist
