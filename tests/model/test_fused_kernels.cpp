// SPDX-License-Identifier: Apache-2.0
// test_fused_kernels.cpp: the fused CPU attention (model/fused_attention.h) against
// the unfused path, the reference: outputs, Ω, I_π and every gradient (input and the
// layer's parameters) at λ ∈ {0, 0.5, 1}, without and with point and route rules, with
// an inactive block, at one token, one tile and lengths that are not multiples of the tile; within
// 1e-5 of the reference's scale in float32 and 1e-10 in float64. Then 50 training steps
// of a small model take the same losses within 1e-4 relative. The FFN's fused bias +
// GELU (model/fused_ffn.h) equals at::linear + at::gelu in values and gradients.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "model/block_attention.h"
#include "model/fused_attention.h"
#include "model/fused_ffn.h"
#include "model/kernel_parallel.h"
#include "model/localist_model.h"

using namespace localist;

namespace {

ModelConfig layer_config() {
  ModelConfig c;
  c.d_model = 24;
  c.n_layers = 1;
  c.context = 160;
  c.heads_per_block = 2;
  c.head_dim = 8;
  c.k_initial = 3;
  c.k_max = 5;
  c.anchor_dim = 5;
  c.ffn_mult = 2;
  c.gamma = 2.5;
  c.tau = 0.5;
  c.rho = 1.5;
  return c;
}

// Sparse random rules on active slots: routes for ~1 token in 6, explicit targets for
// ~1 query in 5, a target block for ~1 query in 7.
RuleMasks random_rules(int64_t B, int64_t T, const std::vector<int64_t>& slots, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const auto slot_t = at::tensor(slots, at::kLong);
  const auto pick = [&](double p) {
    const auto which = at::randint(static_cast<int64_t>(slots.size()), {B, T}, gen, at::kLong);
    const auto on = at::rand({B, T}, gen) < p;
    return at::where(on, slot_t.index_select(0, which.flatten()).view({B, T}), at::full({B, T}, -1, at::kLong));
  };
  RuleMasks r;
  r.route_block = pick(1.0 / 6);
  r.point_block = pick(1.0 / 7);
  const auto queries = (at::rand({B, T, 1}, gen) < 0.2);
  r.point_targets = queries & (at::rand({B, T, T}, gen) < 0.1);
  return r;
}

struct LayerRun {
  at::Tensor y, omega, mi;
  std::vector<at::Tensor> grads;  // input, anchors, then the layer's parameters
};

LayerRun run_layer(LocalistLayer& L, const LocalistModel& m, const at::Tensor& xn0, const at::Tensor& active,
                   double dial, const RuleMasks* rules, bool fused) {
  auto xn = xn0.clone().set_requires_grad(true);
  for (auto& p : L.parameters()) p.mutable_grad() = at::Tensor();
  ForwardResult out;
  LayerRun r;
  // The anchors as a leaf of their own, so their gradient is compared too.
  auto anchors = m.anchors.detach().to(xn.scalar_type()).clone().set_requires_grad(true);
  r.y = localist_attention(L, xn, anchors, active, m.config(), dial, rules, true, false, out, nullptr, false, fused);
  r.omega = out.omega.at(0), r.mi = out.mutual_info.at(0);
  auto gen = at::detail::createCPUGenerator(77);
  const auto proj = at::empty(r.y.sizes(), r.y.options()).normal_(0, 1, gen);
  ((r.y * proj).sum() + 0.7 * r.omega - 0.3 * r.mi).backward();
  r.grads.push_back(xn.grad());
  r.grads.push_back(anchors.grad().defined() ? anchors.grad() : at::zeros_like(anchors));
  for (auto& p : L.parameters()) r.grads.push_back(p.grad().defined() ? p.grad() : at::zeros_like(p));
  return r;
}

// max |a - b| over the reference's scale (max |b|, at least 1e-3).
double scaled_diff(const at::Tensor& a, const at::Tensor& b) {
  const double scale = std::max(b.abs().max().item<double>(), 1e-3);
  return (a - b).abs().max().item<double>() / scale;
}

void expect_same(const LayerRun& f, const LayerRun& u, double tol, const std::string& what) {
  EXPECT_LE(scaled_diff(f.y, u.y), tol) << what << ": output";
  EXPECT_LE(scaled_diff(f.omega, u.omega), tol) << what << ": omega";
  EXPECT_LE(scaled_diff(f.mi, u.mi), tol) << what << ": I_pi";
  ASSERT_EQ(f.grads.size(), u.grads.size());
  for (size_t i = 0; i < f.grads.size(); ++i) {
    EXPECT_LE(scaled_diff(f.grads[i], u.grads[i]), tol) << what << ": gradient " << i;
  }
}

}  // namespace

TEST(FusedAttention, EqualsTheUnfusedPathInOutputsPenaltiesAndGradients) {
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    const double tol = dtype == at::kDouble ? 1e-10 : 1e-5;
    LocalistModel m(layer_config(), 13, 4);
    m.to(dtype);
    m.set_block_active(1, false);
    m.set_block_active(4, true);  // active slots {0, 2, 4}: slot 1 and 3 inactive
    {
      at::NoGradGuard g;
      auto gen = at::detail::createCPUGenerator(5);
      for (auto& p : m.parameters()) p.add_(at::empty(p.sizes(), p.options()).normal_(0.0, 0.1, gen));
    }
    const std::vector<int64_t> slots{0, 2, 4};
    const auto active = at::tensor(slots, at::kLong);
    for (const int64_t T : {1, 64, 70, 130}) {
      auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(T));
      const auto xn = at::empty({2, T, 24}, dtype).normal_(0, 1, gen);
      const RuleMasks rules = random_rules(2, T, slots, 9);
      for (const double dial : {0.0, 0.5, 1.0}) {
        for (const bool with_rules : {false, true}) {
          const RuleMasks* r = with_rules ? &rules : nullptr;
          const std::string what = std::string(dtype == at::kDouble ? "float64" : "float32") +
                                   " T=" + std::to_string(T) + " dial=" + std::to_string(dial) +
                                   (with_rules ? " rules" : "");
          const LayerRun u = run_layer(*m.layers[0], m, xn, active, dial, r, false);
          const LayerRun f = run_layer(*m.layers[0], m, xn, active, dial, r, true);
          expect_same(f, u, tol, what);
          // The penalty is live (the comparison can fail): Ω > 0 and moves the input's gradient.
          EXPECT_GT(u.omega.item<double>(), 1e-3) << what;
        }
      }
    }
  }
}

// More blocks than the kernel sums in vector lanes (16): Ω's group sums take the scalar
// path, and still equal the unfused path.
TEST(FusedAttention, ManyBlocksEqualTheUnfusedPathToo) {
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    const double tol = dtype == at::kDouble ? 1e-10 : 1e-5;
    ModelConfig c = layer_config();
    c.k_initial = 18, c.k_max = 20, c.heads_per_block = 1, c.d_model = 40, c.anchor_dim = 5;
    LocalistModel m(c, 13, 4);
    m.to(dtype);
    {
      at::NoGradGuard g;
      auto gen = at::detail::createCPUGenerator(6);
      for (auto& p : m.parameters()) p.add_(at::empty(p.sizes(), p.options()).normal_(0.0, 0.1, gen));
    }
    std::vector<int64_t> slots(18);
    for (int64_t k = 0; k < 18; ++k) slots[static_cast<size_t>(k)] = k;
    const auto active = at::tensor(slots, at::kLong);
    auto gen = at::detail::createCPUGenerator(3);
    const auto xn = at::empty({2, 70, 40}, dtype).normal_(0, 1, gen);
    const LayerRun u = run_layer(*m.layers[0], m, xn, active, 1.0, nullptr, false);
    const LayerRun f = run_layer(*m.layers[0], m, xn, active, 1.0, nullptr, true);
    expect_same(f, u, tol, dtype == at::kDouble ? "float64, 18 blocks" : "float32, 18 blocks");
    EXPECT_GT(u.omega.item<double>(), 1e-3);
  }
}

TEST(FusedAttention, DiffersWhenTheBiasIsDropped) {
  // A check that the comparison above can fail: the fused path at λ = 1 is far from the
  // unfused one at λ = 0.5.
  LocalistModel m(layer_config(), 13, 4);
  m.to(at::kDouble);
  const auto active = at::tensor(std::vector<int64_t>{0, 1, 2}, at::kLong);
  auto gen = at::detail::createCPUGenerator(3);
  const auto xn = at::empty({1, 40, 24}, at::kDouble).normal_(0, 1, gen);
  const LayerRun u = run_layer(*m.layers[0], m, xn, active, 0.5, nullptr, false);
  const LayerRun f = run_layer(*m.layers[0], m, xn, active, 1.0, nullptr, true);
  EXPECT_GT(scaled_diff(f.y, u.y), 1e-3);
}

TEST(FusedAttention, FiftyTrainingStepsTakeTheUnfusedLosses) {
  ModelConfig c = layer_config();
  c.n_layers = 2;
  c.context = 100;
  const int64_t V = 31, B = 3, T = 100;
  auto gen = at::detail::createCPUGenerator(11);
  const auto data = at::randint(V, {B, T + 1}, gen, at::kLong);
  const auto x = data.narrow(1, 0, T), y = data.narrow(1, 1, T).contiguous();
  auto losses = [&](bool fused) {
    LocalistModel m(c, V, 8);
    m.train();
    torch::optim::AdamW opt(m.parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0.1));
    std::vector<double> out;
    for (int s = 0; s < 50; ++s) {
      ForwardOptions o;
      o.dial = {0.6, 1.0};
      o.penalties = true;
      o.fused = fused;
      const auto r = m.forward(x, o);
      auto loss = at::cross_entropy_loss(r.logits.reshape({-1, V}), y.reshape({-1}));
      for (int l = 0; l < 2; ++l) loss = loss + o.dial[l] * (0.05 * r.omega[l] - 0.1 * r.mutual_info[l]) / 2.0;
      opt.zero_grad();
      loss.backward();
      opt.step();
      out.push_back(loss.item<double>());
    }
    return out;
  };
  const auto u = losses(false), f = losses(true);
  for (size_t s = 0; s < u.size(); ++s) EXPECT_NEAR(f[s], u[s], 1e-4 * std::fabs(u[s])) << "step " << s;
  EXPECT_LT(u.back(), u.front() - 0.1);  // it trains
}

TEST(FusedAttention, SameBitsAtAnyThreadCount) {
  // Each gradient row has one writer and the partial sums add in a fixed order, so exact
  // resume and world-size comparisons do not depend on the thread count.
  LocalistModel m(layer_config(), 13, 4);
  const auto active = at::tensor(std::vector<int64_t>{0, 1, 2}, at::kLong);
  auto gen = at::detail::createCPUGenerator(8);
  const auto xn = at::empty({3, 150, 24}, at::kFloat).normal_(0, 1, gen);
  const RuleMasks rules = random_rules(3, 150, {0, 1, 2}, 4);
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const LayerRun one = run_layer(*m.layers[0], m, xn, active, 0.7, &rules, true);
  at::set_num_threads(3);
  const LayerRun three = run_layer(*m.layers[0], m, xn, active, 0.7, &rules, true);
  at::set_num_threads(before);
  EXPECT_TRUE(at::equal(one.y, three.y));
  EXPECT_TRUE(at::equal(one.omega, three.omega));
  for (size_t i = 0; i < one.grads.size(); ++i)
    EXPECT_TRUE(at::equal(one.grads[i], three.grads[i])) << "gradient " << i;
  // The trainer's setting, one LibTorch thread and the BLAS on three: the kernels take
  // three threads of their own (OpenBLAS single-threaded meanwhile). Ω, computed inside
  // the kernel, keeps its bits; the layer's output and gradients differ only where
  // OpenBLAS's own threads change the last bits of a product outside the kernels (the
  // unfused path's do too): on an AMD EPYC with Debian's OpenBLAS 0.3.21 the output
  // projection's three-thread product does.
  const int blas_before = blas_threads();
  at::set_num_threads(1);
  if (!set_blas_threads(3)) GTEST_SKIP() << "the BLAS is not OpenBLAS";
  EXPECT_EQ(kernel_threads(), 3);
  const LayerRun blas3 = run_layer(*m.layers[0], m, xn, active, 0.7, &rules, true);
  EXPECT_EQ(blas_threads(), 3) << "restored after each kernel";
  set_blas_threads(blas_before);
  at::set_num_threads(before);
  EXPECT_LE(scaled_diff(blas3.y, one.y), 1e-6) << "output (BLAS threads)";
  EXPECT_TRUE(at::equal(one.omega, blas3.omega));
  for (size_t i = 0; i < one.grads.size(); ++i)
    EXPECT_LE(scaled_diff(blas3.grads[i], one.grads[i]), 1e-6) << "gradient " << i << " (BLAS threads)";
}

TEST(KernelParallel, RestartedBlasWorkersSpinBrieflyAndStillMultiply) {
  if (blas_worker_spin() == 0) GTEST_SKIP() << "the BLAS is not OpenBLAS";
  const char* env = std::getenv("OPENBLAS_THREAD_TIMEOUT");
  const int given = env ? std::atoi(env) : 0;
  const int expected = env ? (given > 0 ? std::clamp(given, 4, 30) : 28) : kBlasSpinExponent;
  const int before = blas_threads();
  set_blas_threads(2);
  EXPECT_EQ(settle_blas_workers(), expected);
  EXPECT_EQ(blas_worker_spin(), expected);
  EXPECT_EQ(blas_threads(), 2) << "the restart keeps the worker count";
  // A product OpenBLAS splits over its workers, against float64.
  auto gen = at::detail::createCPUGenerator(5);
  const auto a = at::empty({300, 200}, at::kFloat).normal_(0, 1, gen);
  const auto b = at::empty({200, 250}, at::kFloat).normal_(0, 1, gen);
  const auto ref = at::mm(a.to(at::kDouble), b.to(at::kDouble));
  EXPECT_LE(scaled_diff(at::mm(a, b).to(at::kDouble), ref), 1e-5);
  set_blas_threads(before);
}

TEST(FusedAttention, SupportsCpuFloatAndDoubleOnly) {
  EXPECT_TRUE(fused_attention_supported(at::zeros({1, 2, 6})));
  EXPECT_TRUE(fused_attention_supported(at::zeros({1, 2, 6}, at::kDouble)));
  EXPECT_FALSE(fused_attention_supported(at::zeros({1, 2, 6}, at::kBFloat16)));
}

TEST(FusedFfn, EqualsLinearAndGeluInValuesAndGradients) {
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    const double tol = dtype == at::kDouble ? 1e-10 : 1e-5;
    auto gen = at::detail::createCPUGenerator(21);
    // 3 x 50 rows (not a multiple of the kernel's row block), 37 outputs (not a multiple
    // of the vector width); values spread over GELU's curved part.
    const auto x0 = at::empty({3, 50, 19}, dtype).normal_(0, 1.5, gen);
    const auto w0 = at::empty({37, 19}, dtype).normal_(0, 0.4, gen);
    const auto b0 = at::empty({37}, dtype).normal_(0, 1, gen);
    const auto proj = at::empty({3, 50, 37}, dtype).normal_(0, 1, gen);
    auto run = [&](bool fused) {
      auto x = x0.clone().set_requires_grad(true), w = w0.clone().set_requires_grad(true),
           b = b0.clone().set_requires_grad(true);
      const auto y = fused ? linear_bias_gelu(x, w, b) : at::gelu(at::linear(x, w, b));
      (y * proj).sum().backward();
      return std::vector<at::Tensor>{y, x.grad(), w.grad(), b.grad()};
    };
    const auto f = run(true), u = run(false);
    const char* names[4] = {"output", "dx", "dw", "db"};
    for (int i = 0; i < 4; ++i) EXPECT_LE(scaled_diff(f[i], u[i]), tol) << names[i] << " " << at::toString(dtype);
  }
}
