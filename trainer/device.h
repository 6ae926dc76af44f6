// SPDX-License-Identifier: Apache-2.0
// device.h: the device a process trains or evaluates on, from `train.device` or
// `--device` ("auto", "cpu", "cuda"), and on a GPU node which GPU a rank takes.
// Limits: one GPU per rank; ranks beyond the visible GPUs share one (with a warning).
#pragma once
#include <c10/core/Device.h>

#include <string>

namespace localist {

// The device to use for `train.device` ("auto": CUDA when available).
std::string trainer_device_name(const std::string& requested);
// The device this rank trains on: the CPU, or GPU (local_rank mod the visible GPUs)
// under CUDA, made the current device (ranks of a node that share a GPU are warned about).
at::Device trainer_device(const std::string& requested, int local_rank);

}  // namespace localist
