// SPDX-License-Identifier: Apache-2.0
// device.cpp: see device.h.
#include "trainer/device.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>

#include "core/error.h"

namespace localist {

std::string trainer_device_name(const std::string& requested) {
  if (requested == "cpu") return "cpu";
  const bool cuda = torch::cuda::is_available();
  if (requested == "cuda" && !cuda) {
    throw ConfigError(
        "train.device: cuda requested but no CUDA device is visible (or LibTorch was built without CUDA)");
  }
  return cuda ? "cuda" : "cpu";
}

at::Device trainer_device(const std::string& requested, int local_rank) {
  if (trainer_device_name(requested) == "cpu") return at::Device(at::kCPU);
  const int n = static_cast<int>(torch::cuda::device_count());
  const auto index = static_cast<c10::DeviceIndex>(local_rank % n);
  if (local_rank >= n) {
    spdlog::warn(
        "local rank {} shares GPU {} ({} visible): NCCL refuses two ranks on one GPU; start at most {} "
        "ranks per node",
        local_rank, index, n, n);
  }
  const at::Device device(at::kCUDA, index);
  // The current device too: libraries that allocate on "the" device (cuBLAS handles,
  // NCCL) then use this rank's GPU, not GPU 0.
  c10::impl::getDeviceGuardImpl(at::kCUDA)->setDevice(device);
  return device;
}

}  // namespace localist
