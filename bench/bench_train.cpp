// SPDX-License-Identifier: Apache-2.0
// bench_train.cpp: training throughput of the localist model (tokens/s, ms/step split
// into forward, backward and optimizer) on the reference GPT-2-like shape: byte
// vocabulary, 4 layers, width 256, 4 blocks of 1 head of width 64, context 256,
// batch 8, AdamW, the full loss CE + λ(μΩ − νI_π). Runs λ = 0 and λ = 1 in one
// invocation; tools/bench_train.sh puts it beside the plain PyTorch baseline.
// On a GPU (tools/gpu_check.sh): LOCALIST_BENCH_DEVICE=cuda, LOCALIST_BENCH_SHAPE=gpt2
// (GPT-2 124M: width 768, 12 layers, 12 blocks of one head of 64, context 1024, GPT-2's
// vocabulary of 50,257 so the head costs what it costs in GPT-2),
// LOCALIST_BENCH_BATCH=N, LOCALIST_BENCH_BF16=1 (autocast); CUDA timings synchronise.
// LOCALIST_BENCH_UNFUSED=1: the unfused attention and FFN (the reference path);
// LOCALIST_BENCH_CONTEXT=T with LOCALIST_BENCH_TOKENS=N: context T, batch N / T;
// LOCALIST_BENCH_DIALS=0,1: the λ values run. Each line ends with the process's peak
// resident memory so far (one λ per process for a memory figure) and, on CUDA, the peak
// GPU memory allocated by that λ's run.
// Usage: bench_train [steps] [warmup] [threads]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <string>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <sys/resource.h>

#include <torch/csrc/autograd/profiler_legacy.h>

#include <memory>

#ifdef LOCALIST_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "model/kernel_parallel.h"
#include "model/localist_model.h"

using namespace localist;
using Clock = std::chrono::steady_clock;

namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

const at::Device kDevice(env_or("LOCALIST_BENCH_DEVICE", "cpu"));
const bool kBf16 = env_or("LOCALIST_BENCH_BF16", "0") == "1" && kDevice.is_cuda();
const bool kUnfused = env_or("LOCALIST_BENCH_UNFUSED", "0") == "1";
const bool kSdpa = env_or("LOCALIST_ATTENTION", "") == "sdpa";  // the SDPA path on any device

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // kilobytes on Linux
}

// Peak GPU memory allocated since the last reset, in MB (0 without CUDA).
double peak_cuda_mb(bool reset) {
#ifdef LOCALIST_HAVE_CUDA
  if (!kDevice.is_cuda()) return 0;
  const int dev = kDevice.has_index() ? kDevice.index() : 0;
  const double mb = static_cast<double>(c10::cuda::CUDACachingAllocator::getDeviceStats(dev).allocated_bytes[0].peak) /
                    (1024.0 * 1024.0);
  if (reset) c10::cuda::CUDACachingAllocator::resetPeakStats(dev);
  return mb;
#else
  return 0;
#endif
}

double ms_since(Clock::time_point t) {
  if (kDevice.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

void run(double dial, int steps, int warmup, bool penalties) {
  ModelConfig c;
  c.d_model = 256, c.n_layers = 4, c.context = 256, c.heads_per_block = 1, c.head_dim = 64;
  c.k_initial = 4, c.k_max = 4, c.anchor_dim = 4, c.ffn_mult = 4;
  int64_t B = 8, T = 256;
  int64_t V = 258;
  if (env_or("LOCALIST_BENCH_SHAPE", "reference") == "gpt2") {
    c.d_model = 768, c.n_layers = 12, c.context = 1024, c.k_initial = 12, c.k_max = 12, c.anchor_dim = 16;
    T = 1024, V = 50257;
  }
  B = std::atoll(env_or("LOCALIST_BENCH_BATCH", std::to_string(B).c_str()).c_str());
  if (const char* t = std::getenv("LOCALIST_BENCH_CONTEXT")) {
    T = std::atoll(t), c.context = T;
    B = std::max<int64_t>(1, std::atoll(env_or("LOCALIST_BENCH_TOKENS", "2048").c_str()) / T);
  }
  peak_cuda_mb(true);
  LocalistModel model(c, V, 1);
  model.to(kDevice);
  model.train();
  torch::optim::AdamW opt(model.parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(0.1));
  auto gen = at::detail::createCPUGenerator(7);
  const auto data = at::randint(V, {B, T + 1}, gen, at::kLong).to(kDevice);
  const auto x = data.narrow(1, 0, T), y = data.narrow(1, 1, T).contiguous();
  double fwd = 0, bwd = 0, optm = 0;
  // LOCALIST_BENCH_PROFILE=FILE: the measured steps' operators as a chrome trace (where the time goes).
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  for (int s = 0; s < warmup + steps; ++s) {
    if (s == warmup && std::getenv("LOCALIST_BENCH_PROFILE")) {
      profile = std::make_unique<torch::autograd::profiler::RecordProfile>(
          std::string(std::getenv("LOCALIST_BENCH_PROFILE")));
    }
    auto t0 = Clock::now();
    ForwardOptions o;
    o.dial = std::vector<double>(c.n_layers, dial);
    o.penalties = penalties && dial > 0;  // as the trainer: λ = 0 gives the penalties zero weight
    o.fused = !kUnfused;
    if (kBf16) {
      at::autocast::set_autocast_enabled(at::kCUDA, true);
      at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    }
    const auto r = model.forward(x, o);
    if (kBf16) at::autocast::set_autocast_enabled(at::kCUDA, false);
    auto loss = at::cross_entropy_loss(r.logits.to(at::kFloat).reshape({-1, V}), y.reshape({-1}));
    for (size_t l = 0; l < r.omega.size(); ++l) loss = loss + dial * (0.01 * r.omega[l] - 0.1 * r.mutual_info[l]) / 4.0;
    const double f = ms_since(t0);
    t0 = Clock::now();
    opt.zero_grad();
    loss.backward();
    const double b = ms_since(t0);
    t0 = Clock::now();
    opt.step();
    const double o2 = ms_since(t0);
    if (s >= warmup) fwd += f, bwd += b, optm += o2;
  }
  profile.reset();
  const double total = (fwd + bwd + optm) / steps;
  std::printf(
      "localist-cpp%s dial=%.1f%s ms/step %.1f (forward %.1f, backward %.1f, optimizer %.1f) tokens/s %.0f params %lld"
      " device %s%s batch %lld context %lld vocab %lld peak_rss_mb %.0f peak_gpu_mb %.0f\n",
      kUnfused ? "-unfused"
      : kSdpa  ? "-sdpa"
               : "",
      dial, penalties ? "" : " (no penalties)", total, fwd / steps, bwd / steps, optm / steps, B * T / (total / 1000.0),
      static_cast<long long>(model.parameter_count()), kDevice.str().c_str(), kBf16 ? " bf16" : "",
      static_cast<long long>(B), static_cast<long long>(T), static_cast<long long>(V), peak_rss_mb(),
      peak_cuda_mb(false));
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 20;
  const int warmup = argc > 2 ? std::atoi(argv[2]) : 3;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 1;
  at::set_num_threads(threads);
  settle_blas_workers();  // as the localist binary does (OPENBLAS_THREAD_TIMEOUT=28: OpenBLAS's default)
  std::stringstream dials(env_or("LOCALIST_BENCH_DIALS", "0,1"));
  for (std::string v; std::getline(dials, v, ',');) run(std::atof(v.c_str()), steps, warmup, true);
  if (argc > 4) run(1.0, steps, warmup, false);  // diagnostic: the cost of Ω and I_π
  return 0;
}
