// SPDX-License-Identifier: Apache-2.0
// attention_compare.h: one attention layer run twice, by two paths, and compared: its
// output, Ω, I_π and every gradient (input, anchors, the layer's parameters) under a
// random projection of the output. Shared by the fused-kernel and SDPA tests.
#pragma once
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "model/block_attention.h"
#include "model/localist_model.h"

namespace localist::test {

inline ModelConfig layer_config() {
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
inline RuleMasks random_rules(int64_t B, int64_t T, const std::vector<int64_t>& slots, uint64_t seed) {
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

inline LayerRun run_layer(LocalistLayer& L, const LocalistModel& m, const at::Tensor& xn0, const at::Tensor& active,
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
inline double scaled_diff(const at::Tensor& a, const at::Tensor& b) {
  const double scale = std::max(b.abs().max().item<double>(), 1e-3);
  return (a - b).abs().max().item<double>() / scale;
}

inline void expect_same(const LayerRun& f, const LayerRun& u, double tol, const std::string& what) {
  EXPECT_LE(scaled_diff(f.y, u.y), tol) << what << ": output";
  EXPECT_LE(scaled_diff(f.omega, u.omega), tol) << what << ": omega";
  EXPECT_LE(scaled_diff(f.mi, u.mi), tol) << what << ": I_pi";
  ASSERT_EQ(f.grads.size(), u.grads.size());
  for (size_t i = 0; i < f.grads.size(); ++i) {
    EXPECT_LE(scaled_diff(f.grads[i], u.grads[i]), tol) << what << ": gradient " << i;
  }
}

using LayerPath = std::function<LayerRun(LocalistLayer&, const LocalistModel&, const at::Tensor& xn,
                                         const at::Tensor& active, double dial, const RuleMasks* rules)>;

// `path` against the explicit path on layer_config() with active slots {0, 2, 4} (slot 1
// inactive, 4 switched on), perturbed weights, at each length in `lengths`, λ ∈ {0, 0.5,
// 1}, without and with rules; within 1e-10 in float64 and 1e-5 in float32.
inline void compare_with_explicit_path(const std::vector<int64_t>& lengths, const LayerPath& path) {
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    const double tol = dtype == at::kDouble ? 1e-10 : 1e-5;
    LocalistModel m(layer_config(), 13, 4);
    m.to(dtype);
    m.set_block_active(1, false);
    m.set_block_active(4, true);
    {
      at::NoGradGuard g;
      auto gen = at::detail::createCPUGenerator(5);
      for (auto& p : m.parameters()) p.add_(at::empty(p.sizes(), p.options()).normal_(0.0, 0.1, gen));
    }
    const std::vector<int64_t> slots{0, 2, 4};
    const auto active = at::tensor(slots, at::kLong);
    for (const int64_t T : lengths) {
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
          const LayerRun f = path(*m.layers[0], m, xn, active, dial, r);
          expect_same(f, u, tol, what);
          // The penalty is live (the comparison can fail): Ω > 0 and moves the input's gradient.
          EXPECT_GT(u.omega.item<double>(), 1e-3) << what;
        }
      }
    }
  }
}

// How far `path` at λ = 1 is from the explicit path at λ = 0.5 (float64): a path that
// ignored the dial would be near 0.
inline double dial_mismatch(const LayerPath& path) {
  LocalistModel m(layer_config(), 13, 4);
  m.to(at::kDouble);
  const auto active = at::tensor(std::vector<int64_t>{0, 1, 2}, at::kLong);
  auto gen = at::detail::createCPUGenerator(3);
  const auto xn = at::empty({1, 40, 24}, at::kDouble).normal_(0, 1, gen);
  const LayerRun u = run_layer(*m.layers[0], m, xn, active, 0.5, nullptr, false);
  const LayerRun f = path(*m.layers[0], m, xn, active, 1.0, nullptr);
  return scaled_diff(f.y, u.y);
}

// 50 AdamW steps of a 2-layer model with penalties at λ = (0.6, 1) on fixed windows: the
// loss of every step. `fused` picks the fast kernels (LOCALIST_ATTENTION chooses which).
inline std::vector<double> fifty_step_losses(bool fused, at::ScalarType dtype = at::kFloat) {
  ModelConfig c = layer_config();
  c.n_layers = 2;
  c.context = 100;
  const int64_t V = 31, B = 3, T = 100;
  auto gen = at::detail::createCPUGenerator(11);
  const auto data = at::randint(V, {B, T + 1}, gen, at::kLong);
  const auto x = data.narrow(1, 0, T), y = data.narrow(1, 1, T).contiguous();
  LocalistModel m(c, V, 8);
  m.to(dtype);
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
}

// One layer of layer_config() on 3 windows of 150 positions with sparse rules, run twice.
struct ThreeWindows {
  LocalistModel m{layer_config(), 13, 4};
  at::Tensor active = at::tensor(std::vector<int64_t>{0, 1, 2}, at::kLong);
  at::Tensor xn;
  RuleMasks rules;
  ThreeWindows() {
    auto gen = at::detail::createCPUGenerator(8);
    xn = at::empty({3, 150, 24}, at::kFloat).normal_(0, 1, gen);
    rules = random_rules(3, 150, {0, 1, 2}, 4);
  }
  LayerRun run() { return run_layer(*m.layers[0], m, xn, active, 0.7, &rules, true); }
};

}  // namespace localist::test
