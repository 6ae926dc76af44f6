// SPDX-License-Identifier: Apache-2.0
// test_device_peak.cpp: run/device_peak.h: the table's peaks for the names CUDA reports
// (NVIDIA's datasheets, dense), none for an unknown GPU, and a CPU peak that is measured
// (its value is the machine's: bench/ and the e2e MFU check use it, no test times it).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "run/device_peak.h"

TEST(DevicePeak, KnownGpusByTheNameCudaReportsUnknownOnesHaveNone) {
  EXPECT_DOUBLE_EQ(localist::known_gpu_peak_flops("NVIDIA H100 80GB HBM3", true), 989.4e12);
  EXPECT_DOUBLE_EQ(localist::known_gpu_peak_flops("NVIDIA H100 80GB HBM3", false), 66.9e12);
  EXPECT_DOUBLE_EQ(localist::known_gpu_peak_flops("NVIDIA H100 PCIe", true), 756.0e12);
  EXPECT_DOUBLE_EQ(localist::known_gpu_peak_flops("NVIDIA H100 NVL", true), 835.0e12);
  EXPECT_DOUBLE_EQ(localist::known_gpu_peak_flops("NVIDIA H200", true), 989.4e12);
  EXPECT_DOUBLE_EQ(localist::known_gpu_peak_flops("NVIDIA A100-SXM4-80GB", true), 312.0e12);
  EXPECT_EQ(localist::known_gpu_peak_flops("NVIDIA GeForce RTX 4090", true), 0.0);
  EXPECT_EQ(localist::known_gpu_peak_flops("", false), 0.0);
}

TEST(DevicePeak, TheCpuPeakIsAMeasuredMatmulRate) {
  const localist::DevicePeak p = localist::device_peak(at::Device(at::kCPU), false);
  ASSERT_GT(p.flops, 0.0) << p.source;
  EXPECT_NE(p.source.find("measured"), std::string::npos) << p.source;
}
