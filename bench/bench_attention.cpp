// SPDX-License-Identifier: Apache-2.0
// bench_attention.cpp: where the locality dial's cost goes in one attention sublayer at
// the reference shape of bench_train (B 8, T 256, d 256, 4 blocks of one 64-wide head):
// forward + backward of localist_attention at λ = 0, at λ = 1 without and with the
// penalties (Ω, I_π), fused and unfused, each as a ratio to fused λ = 0 in this run.
// Run on an idle machine; best of interleaved rounds. Usage: bench_attention [reps] [rounds]
// [case]: only that case (0-4), e.g. under perf; LOCALIST_BENCH_PROFILE=FILE writes its
// operators as a chrome trace (as bench_train).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "model/block_attention.h"
#include "model/kernel_parallel.h"
#include "model/localist_model.h"

using namespace localist;

namespace {

struct Case {
  const char* name;
  double dial;
  bool penalties, fused;
};

double run_ms(LocalistLayer& L, const LocalistModel& m, const at::Tensor& xn0, const at::Tensor& active, const Case& c,
              int reps) {
  const auto proj = at::ones({1}, xn0.options());
  double best = 1e30;
  for (int r = 0; r < reps + 2; ++r) {
    auto xn = xn0.clone().set_requires_grad(true);
    for (auto& p : L.parameters()) p.mutable_grad() = at::Tensor();
    const auto t0 = std::chrono::steady_clock::now();
    ForwardResult out;
    const auto y = localist_attention(L, xn, m.anchors, active, m.config(), c.dial, nullptr, c.penalties, false, out,
                                      nullptr, false, c.fused);
    auto loss = (y * xn0).sum();
    if (c.penalties) loss = loss + 0.01 * out.omega.at(0) - 0.1 * out.mutual_info.at(0);
    loss.backward();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (r >= 2) best = std::min(best, ms);  // two warm-up repetitions
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 10;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  at::set_num_threads(1);
  settle_blas_workers();  // as the localist binary does
  ModelConfig c;
  c.d_model = 256, c.n_layers = 1, c.context = 256, c.heads_per_block = 1, c.head_dim = 64;
  c.k_initial = 4, c.k_max = 4, c.anchor_dim = 4, c.ffn_mult = 4;
  LocalistModel model(c, 258, 1);
  auto gen = at::detail::createCPUGenerator(3);
  const auto xn = at::empty({8, 256, 256}, at::kFloat).normal_(0, 1, gen);
  const auto active = at::arange(4, at::kLong);
  const std::vector<Case> cases = {{"fused λ=0", 0.0, false, true},
                                   {"fused λ=1 no penalties", 1.0, false, true},
                                   {"fused λ=1 penalties", 1.0, true, true},
                                   {"unfused λ=0", 0.0, false, false},
                                   {"unfused λ=1 penalties", 1.0, true, false}};
  const int only = argc > 3 ? std::atoi(argv[3]) : -1;
  std::vector<double> best(cases.size(), 1e30);
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  if (only >= 0 && std::getenv("LOCALIST_BENCH_PROFILE")) {
    profile = std::make_unique<torch::autograd::profiler::RecordProfile>(std::getenv("LOCALIST_BENCH_PROFILE"));
  }
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < cases.size(); ++i) {
      if (only >= 0 && static_cast<int>(i) != only) continue;
      best[i] = std::min(best[i], run_ms(*model.layers[0], model, xn, active, cases[i], reps));
    }
  }
  profile.reset();
  std::printf("attention sublayer, forward + backward, B 8 T 256 d 256, 4 heads of 64 (best of %d x %d)\n", rounds,
              reps);
  for (size_t i = 0; i < cases.size(); ++i) {
    if (only >= 0 && static_cast<int>(i) != only) continue;
    std::printf("%-24s %7.2f ms  %.2fx fused λ=0\n", cases[i].name, best[i], only >= 0 ? 1.0 : best[i] / best[0]);
  }
  return 0;
}
