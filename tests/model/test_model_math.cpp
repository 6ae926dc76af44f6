// SPDX-License-Identifier: Apache-2.0
// test_model_math.cpp: the localist layer against independent references in float64:
// at λ = 0 without rules it equals plain multi-head causal attention written as loops;
// the whole loss CE + mean_l λ_l (μ Ω_l − ν I_π,l) has gradients equal to central finite
// differences (bias through π, gates); Ω and I_π equal triple-loop implementations;
// anchors meet M1.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "model/anchors.h"
#include "model/block_attention.h"
#include "model/localist_model.h"
#include "model/penalty.h"

using namespace localist;

namespace {

ModelConfig tiny_config() {
  ModelConfig c;
  c.d_model = 8;
  c.n_layers = 2;
  c.context = 7;
  c.heads_per_block = 2;
  c.head_dim = 3;
  c.k_initial = 3;
  c.k_max = 4;
  c.anchor_dim = 4;
  c.ffn_mult = 2;
  c.gamma = 3.0;
  c.tau = 0.7;
  return c;
}

std::shared_ptr<LocalistModel> tiny_model(uint64_t seed = 3) {
  auto m = std::make_shared<LocalistModel>(tiny_config(), 11, seed);
  m->to(at::kDouble);
  // Non-zero biases and LayerNorm affine terms so every parameter matters.
  at::NoGradGuard g;
  auto gen = at::detail::createCPUGenerator(seed + 100);
  for (auto& p : m->parameters()) p.add_(at::empty(p.sizes(), p.options()).normal_(0.0, 0.05, gen));
  return m;
}

// Plain causal multi-head attention over the given heads, as explicit loops.
at::Tensor naive_mha(const LocalistLayer& L, const at::Tensor& xn, const std::vector<int64_t>& heads, int64_t dh) {
  const int64_t B = xn.size(0), T = xn.size(1), d = xn.size(2), hd = L.qkv_w.size(0) / 3;
  auto y = at::zeros({B, T, d}, at::kDouble);
  auto W = L.qkv_w.to(at::kDouble), bq = L.qkv_b.to(at::kDouble), Wo = L.out_w.to(at::kDouble);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h : heads) {
      std::vector<std::vector<double>> q(T, std::vector<double>(dh)), k = q, v = q;
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t e = 0; e < dh; ++e) {
          double sq = bq[h * dh + e].item<double>(), sk = bq[hd + h * dh + e].item<double>(),
                 sv = bq[2 * hd + h * dh + e].item<double>();
          for (int64_t i = 0; i < d; ++i) {
            const double x = xn[b][t][i].item<double>();
            sq += W[h * dh + e][i].item<double>() * x;
            sk += W[hd + h * dh + e][i].item<double>() * x;
            sv += W[2 * hd + h * dh + e][i].item<double>() * x;
          }
          q[t][e] = sq, k[t][e] = sk, v[t][e] = sv;
        }
      }
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> w(i + 1);
        double mx = -1e300, z = 0;
        for (int64_t j = 0; j <= i; ++j) {
          double s = 0;
          for (int64_t e = 0; e < dh; ++e) s += q[i][e] * k[j][e];
          w[j] = s / std::sqrt(double(dh));
          mx = std::max(mx, w[j]);
        }
        for (auto& x : w) z += (x = std::exp(x - mx));
        for (int64_t e = 0; e < dh; ++e) {
          double o = 0;
          for (int64_t j = 0; j <= i; ++j) o += w[j] / z * v[j][e];
          for (int64_t out = 0; out < d; ++out) {
            y[b][i][out] += Wo[out][h * dh + e].item<double>() * o;
          }
        }
      }
    }
    for (int64_t t = 0; t < T; ++t) y[b][t] += L.out_b.to(at::kDouble);
  }
  return y;
}

}  // namespace

TEST(LocalistLayer, DialZeroEqualsPlainMultiHeadAttention) {
  auto m = tiny_model();
  m->set_block_active(1, false);
  m->set_block_active(3, true);  // active slots {0, 2, 3}: heads {0,1,4,5,6,7}
  auto gen = at::detail::createCPUGenerator(5);
  const auto xn = at::empty({2, 7, 8}, at::kDouble).normal_(0, 1, gen);
  ForwardResult out;
  const auto active = at::tensor(std::vector<int64_t>{0, 2, 3}, at::kLong);
  const auto y = localist_attention(*m->layers[0], xn, m->anchors, active, m->config(), 0.0, nullptr, false, true, out);
  const auto ref = naive_mha(*m->layers[0], xn, {0, 1, 4, 5, 6, 7}, 3);
  EXPECT_LE((y - ref).abs().max().item<double>(), 1e-6);
  EXPECT_LE((y - ref).abs().max().item<double>(), 1e-12);  // in float64 it is exact to rounding
  // λ > 0 changes the layer (the test can fail).
  const auto y1 =
      localist_attention(*m->layers[0], xn, m->anchors, active, m->config(), 0.8, nullptr, false, false, out);
  EXPECT_GT((y1 - ref).abs().max().item<double>(), 1e-4);
}

TEST(LocalistModel, LossGradientsMatchFiniteDifferences) {
  auto m = tiny_model(9);
  const auto tokens =
      at::tensor(std::vector<int64_t>{1, 4, 2, 9, 3, 3, 7, 0, 5, 10, 2, 6, 1, 8}, at::kLong).view({2, 7});
  const auto targets = at::roll(tokens, -1, 1);
  const double mu = 0.3, nu = 0.2;
  const std::vector<double> dial{0.7, 0.4};
  auto loss_fn = [&] {
    ForwardOptions o;
    o.dial = dial;
    o.penalties = true;
    const auto r = m->forward(tokens, o);
    auto loss = at::cross_entropy_loss(r.logits.reshape({-1, 11}), targets.reshape({-1}));
    auto pen = at::zeros({}, at::kDouble);
    for (int l = 0; l < 2; ++l) pen = pen + dial[l] * (mu * r.omega[l] - nu * r.mutual_info[l]);
    return loss + pen / 2.0;
  };
  m->zero_grad();
  loss_fn().backward();
  auto gen = at::detail::createCPUGenerator(1);
  int checked = 0;
  for (const auto& item : m->named_parameters()) {
    auto p = item.value();
    const auto grad = p.grad().clone();
    for (int s = 0; s < 4; ++s) {
      const int64_t idx = at::randint(p.numel(), {1}, gen, at::kLong).item<int64_t>();
      const double h = 1e-6;
      double up, down;
      {
        at::NoGradGuard g;
        auto flat = p.view({-1});
        const double orig = flat[idx].item<double>();
        flat[idx] = orig + h;
        up = loss_fn().item<double>();
        flat[idx] = orig - h;
        down = loss_fn().item<double>();
        flat[idx] = orig;
      }
      const double fd = (up - down) / (2 * h), an = grad.view({-1})[idx].item<double>();
      EXPECT_NEAR(an, fd, 1e-6 + 1e-5 * std::fabs(fd)) << item.key() << "[" << idx << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 60);
  // The routing weights get gradient through the bias, the gates and I_π.
  EXPECT_GT(m->layers[0]->router_w.grad().abs().sum().item<double>(), 0.0);
}

TEST(Penalty, OmegaAndMutualInformationMatchLoops) {
  auto gen = at::detail::createCPUGenerator(11);
  const int64_t B = 2, H = 4, T = 9, K = 3;
  auto logits = at::empty({B, H, T, T}, at::kDouble).normal_(0, 2, gen);
  logits = logits.masked_fill(at::ones({T, T}, at::kBool).triu(1), -INFINITY);
  const auto alpha = at::softmax(logits, -1);
  const auto hard = at::randint(K, {B, T}, gen, at::kLong);
  const auto head_block = at::tensor(std::vector<int64_t>{0, 0, 1, 2}, at::kLong);
  const auto got = penalty_omega_per_query(alpha, hard, head_block, K);
  double total = 0;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t i = 0; i < T; ++i) {
        double omega = 0;
        for (int64_t k2 = 0; k2 < K; ++k2) {
          if (k2 == head_block[h].item<int64_t>()) continue;
          double sq = 0;
          int64_t n = 0;
          for (int64_t j = 0; j <= i; ++j) {
            if (hard[b][j].item<int64_t>() != k2) continue;
            sq += std::pow(alpha[b][h][i][j].item<double>(), 2);
            ++n;
          }
          omega += std::sqrt(double(n)) * std::sqrt(sq);
        }
        EXPECT_NEAR(got[b][h][i].item<double>(), omega, 1e-12);
        total += omega;
      }
    }
  }
  EXPECT_NEAR(penalty_omega(alpha, hard, head_block, K).item<double>(), total / (B * H * T), 1e-12);

  const auto pi = at::softmax(at::empty({B, T, K}, at::kDouble).normal_(0, 1.5, gen), -1);
  double mean_h = 0;
  std::vector<double> bar(K, 0.0);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t k = 0; k < K; ++k) {
        const double p = pi[b][t][k].item<double>();
        mean_h -= p * std::log2(p) / (B * T);
        bar[k] += p / (B * T);
      }
    }
  }
  double h_bar = 0;
  for (double p : bar) h_bar -= p * std::log2(p);
  EXPECT_NEAR(routing_mutual_information(pi).item<double>(), h_bar - mean_h, 1e-12);
  // Collapse (every token on one block) has zero mutual information.
  auto collapsed = at::zeros({B, T, K}, at::kDouble);
  collapsed.select(-1, 1).fill_(1.0);
  EXPECT_NEAR(routing_mutual_information(collapsed).item<double>(), 0.0, 1e-12);
}

TEST(Anchors, HadamardIdentityAndGreedyCodes) {
  const AnchorCode h = anchors_make(8, 8, 1);
  EXPECT_EQ(h.kind, "hadamard");
  EXPECT_NEAR(h.coherence, 0.0, 1e-15);
  const AnchorCode h2 = anchors_make(4, 6, 1);  // power of two 4 <= 6 holds 4 rows
  EXPECT_EQ(h2.kind, "hadamard");
  EXPECT_NEAR(h2.coherence, 0.0, 1e-15);
  const AnchorCode id = anchors_make(6, 6, 1);  // 4 < 6: no Hadamard fits
  EXPECT_EQ(id.kind, "identity");
  EXPECT_NEAR(id.coherence, 0.0, 1e-15);
  const AnchorCode g = anchors_make(32, 8, 7);
  EXPECT_EQ(g.kind, "greedy");
  EXPECT_GE(g.coherence, g.welch_bound - 1e-12);  // no code beats the Welch bound
  EXPECT_LT(g.coherence, 1.0);
  EXPECT_NEAR(g.welch_bound, std::sqrt(24.0 / (8.0 * 31.0)), 1e-12);
  for (int64_t k = 0; k < 32; ++k) {
    double n = 0;
    for (int64_t i = 0; i < 8; ++i) n += g.values[k * 8 + i] * g.values[k * 8 + i];
    EXPECT_NEAR(n, 1.0, 1e-12);
  }
  EXPECT_EQ(anchors_make(32, 8, 7).values, g.values);  // deterministic for a seed
  EXPECT_NE(anchors_make(32, 8, 8).values, g.values);
  EXPECT_THROW(anchors_make(64, 5, 1), ConfigError);  // log2 64 = 6 bits needed
}

TEST(Penalty, OmegaBackwardMatchesAutogradOfTheFormula) {
  auto gen = at::detail::createCPUGenerator(12);
  const int64_t B = 2, H = 3, T = 8, K = 3;
  auto logits = at::empty({B, H, T, T}, at::kDouble).normal_(0, 2, gen);
  logits = logits.masked_fill(at::ones({T, T}, at::kBool).triu(1), -INFINITY);
  const auto hard = at::randint(K, {B, T}, gen, at::kLong);
  const auto head_block = at::tensor(std::vector<int64_t>{0, 1, 2}, at::kLong);
  auto grad_of = [&](bool custom) {
    auto x = logits.clone().requires_grad_();
    const auto alpha = at::softmax(x, -1) * 1.0;
    const auto v =
        custom ? penalty_omega(alpha, hard, head_block, K) : penalty_omega_per_query(alpha, hard, head_block, K).mean();
    (v * 3.0).backward();
    return std::make_pair(v.item<double>(), x.grad());
  };
  const auto [v1, g1] = grad_of(true);
  const auto [v2, g2] = grad_of(false);
  EXPECT_NEAR(v1, v2, 1e-12);
  EXPECT_LE((g1 - g2).abs().max().item<double>(), 1e-12);
  EXPECT_GT(g1.abs().max().item<double>(), 1e-3);
}
