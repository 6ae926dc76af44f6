// SPDX-License-Identifier: Apache-2.0
// process_memory.h: this process's resident memory as the kernel counts it
// (/proc/self/status: VmRSS now, VmHWM the high-water mark). Linux only; zeros elsewhere.
// Limits: RSS counts what the allocator holds, so memory freed but kept by malloc
// still counts; large tensors are mmap'd and returned when freed.
#pragma once
#include <cstdint>

namespace localist {

struct ProcessMemory {
  int64_t rss_bytes = 0;
  int64_t peak_rss_bytes = 0;
};

ProcessMemory process_memory();

}  // namespace localist
