// SPDX-License-Identifier: Apache-2.0
// device_peak.h: the peak FLOP rate that MFU divides by. A GPU's comes from a table of
// known devices (dense tensor-core bf16, or plain fp32 — LibTorch's default fp32 matmul
// uses no TF32), an unknown GPU has none (MFU "n/a", never a made-up peak); a CPU rank's
// is the rate of an fp32 matmul measured once at start-up on its threads, while every
// rank measures (ranks sharing cores share the rate). Limits: no sparsity, no boost clocks.
#pragma once
#include <c10/core/Device.h>

#include <string>

namespace localist {

struct DevicePeak {
  double flops = 0;    // per rank, FLOP/s; 0: unknown
  std::string source;  // what it is: "NVIDIA H100 80GB HBM3, bf16 dense (table)", "fp32 matmul measured, 4 threads"
};

// The table's peak for a GPU named `name` (as CUDA reports it); 0 when it is not known.
double known_gpu_peak_flops(const std::string& name, bool bf16);

// The peak of this rank's device: table lookup on CUDA, a measured matmul on CPU.
DevicePeak device_peak(const at::Device& device, bool bf16);

}  // namespace localist
