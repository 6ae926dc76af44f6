// bench_train.cpp: training throughput of the localist model (tokens/s, ms/step split
// into forward, backward and optimizer) on the reference GPT-2-like shape: byte
// vocabulary, 4 layers, width 256, 4 blocks of 1 head of width 64, context 256,
// batch 8, AdamW, the full loss CE + λ(μΩ − νI_π). Runs λ = 0 and λ = 1 in one
// invocation; tools/bench_train.sh puts it beside the plain PyTorch baseline.
// Usage: bench_train [steps] [warmup] [threads]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "model/localist_model.h"

using namespace localist;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void run(double dial, int steps, int warmup, bool penalties) {
  ModelConfig c;
  c.d_model = 256, c.n_layers = 4, c.context = 256, c.heads_per_block = 1, c.head_dim = 64;
  c.k_initial = 4, c.k_max = 4, c.anchor_dim = 4, c.ffn_mult = 4;
  const int64_t B = 8, T = 256, V = 258;
  LocalistModel model(c, V, 1);
  model.train();
  torch::optim::AdamW opt(model.parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(0.1));
  auto gen = at::detail::createCPUGenerator(7);
  const auto data = at::randint(256, {B, T + 1}, gen, at::kLong);
  const auto x = data.narrow(1, 0, T), y = data.narrow(1, 1, T);
  double fwd = 0, bwd = 0, optm = 0;
  for (int s = 0; s < warmup + steps; ++s) {
    auto t0 = Clock::now();
    ForwardOptions o;
    o.dial = std::vector<double>(c.n_layers, dial);
    o.penalties = penalties && dial > 0;  // as the trainer: λ = 0 gives the penalties zero weight
    const auto r = model.forward(x, o);
    auto loss = at::cross_entropy_loss(r.logits.reshape({-1, V}), y.reshape({-1}));
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
  const double total = (fwd + bwd + optm) / steps;
  std::printf("localist-cpp dial=%.1f%s ms/step %.1f (forward %.1f, backward %.1f, optimizer %.1f) tokens/s %.0f params %lld\n",
              dial, penalties ? "" : " (no penalties)", total, fwd / steps, bwd / steps, optm / steps, B * T / (total / 1000.0),
              static_cast<long long>(model.parameter_count()));
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 20;
  const int warmup = argc > 2 ? std::atoi(argv[2]) : 3;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 1;
  at::set_num_threads(threads);
  run(0.0, steps, warmup, true);
  run(1.0, steps, warmup, true);
  if (argc > 4) run(1.0, steps, warmup, false);  // diagnostic: the cost of Ω and I_π
  return 0;
}
