// SPDX-License-Identifier: Apache-2.0
// tensor_memory.h: live and peak bytes of CPU tensors, counted by a wrapper around
// LibTorch's CPU allocator — the benchmarks' measure of activation memory (peak during
// training minus what stays live after it). Opt-in (LOCALIST_COUNT_TENSOR_MEMORY=1): a
// lock per allocation and free. Limits: CPU tensors only; allocations made before it is
// installed are not counted (their frees neither).
#pragma once
#include <cstdint>

namespace localist {

struct TensorMemory {
  bool counting = false;
  int64_t live = 0, peak = 0;  // bytes
};

// Installs the counting allocator when LOCALIST_COUNT_TENSOR_MEMORY=1 (once per process).
void tensor_memory_install_from_env();
TensorMemory tensor_memory();
void tensor_memory_reset_peak();  // the peak becomes what is live now

}  // namespace localist
