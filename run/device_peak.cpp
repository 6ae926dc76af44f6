// SPDX-License-Identifier: Apache-2.0
// device_peak.cpp: see device_peak.h. Peaks are NVIDIA's datasheet figures (dense).
#include "run/device_peak.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#ifdef LOCALIST_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace localist {
namespace {

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// fp32 matmul at n = 768: best of 5 after 2 warm-ups (~80 ms on one core; n = 512 reads
// ~20% low with MKL, n = 1024 and 2048 within the machine's noise of 768).
double measured_matmul_flops() {
  constexpr int64_t n = 768;
  // Constant operands: a draw would move the default generator a resumed run restored.
  const auto a = at::full({n, n}, 0.5f), b = at::full({n, n}, 0.25f);
  auto c = at::mm(a, b);
  c = at::mm(a, b);
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    c = at::mm(a, b);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * n * n * n / std::max(best, 1e-9);
}

}  // namespace

double known_gpu_peak_flops(const std::string& name, bool bf16) {
  struct Known {
    const char *model, *variant;  // both must appear in the name (variant "" matches any)
    double bf16, fp32;            // TFLOP/s, dense
  };
  // First match wins: the variants before the family's default (SXM).
  static const Known table[] = {
      {"H100", "PCIe", 756.0, 51.2}, {"H100", "NVL", 835.0, 60.0}, {"H100", "", 989.4, 66.9},
      {"H200", "NVL", 835.0, 60.0},  {"H200", "", 989.4, 66.9},    {"A100", "", 312.0, 19.5},
  };
  for (const Known& k : table) {
    if (has(name, k.model) && has(name, k.variant)) return 1e12 * (bf16 ? k.bf16 : k.fp32);
  }
  return 0;
}

DevicePeak device_peak(const at::Device& device, bool bf16) {
  DevicePeak p;
  if (device.is_cuda()) {
#ifdef LOCALIST_HAVE_CUDA
    const std::string name = at::cuda::getDeviceProperties(device.has_index() ? device.index() : 0)->name;
    p.flops = known_gpu_peak_flops(name, bf16);
    p.source =
        fmt::format("{}, {} dense{}", name, bf16 ? "bf16" : "fp32", p.flops > 0 ? " (table)" : ": not in the table");
#else
    p.source = "a CUDA device in a build without CUDA";
#endif
    return p;
  }
  p.flops = measured_matmul_flops();
  p.source = fmt::format("fp32 matmul measured at start-up, {} thread(s): {:.1f} GFLOP/s", at::get_num_threads(),
                         p.flops / 1e9);
  return p;
}

}  // namespace localist
