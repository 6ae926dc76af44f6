// test_gpu.cpp: the gpu group. Exits 77 (reported by CTest as skipped, with the reason
// printed) when no CUDA device is visible; otherwise checks that the device computes a
// matmul that matches a float64 CPU reference and that localist sees the device.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cstdio>

#include "trainer/torch_runtime.h"

TEST(Gpu, MatmulMatchesFloat64CpuReference) {
  at::manual_seed(0);
  const at::Tensor a = at::randn({512, 384}), b = at::randn({384, 256});
  const at::Tensor ref = at::matmul(a.to(at::kDouble), b.to(at::kDouble));
  const at::Tensor got = at::matmul(a.cuda(), b.cuda()).cpu().to(at::kDouble);
  // TF32 may be on for matmuls: allow its ~1e-3 relative error.
  EXPECT_LT((got - ref).abs().max().item<double>() / ref.abs().max().item<double>(), 5e-3);
}

TEST(Gpu, RuntimeSeesTheDevice) {
  const localist::TorchRuntimeInfo info = localist::torch_runtime_info();
  EXPECT_TRUE(info.cuda_available);
  EXPECT_GE(info.cuda_devices, 1);
}

int main(int argc, char** argv) {
  if (!torch::cuda::is_available()) {
    std::printf("no CUDA device visible (or LibTorch built without CUDA): skipping the gpu tests\n");
    return 77;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
