// SPDX-License-Identifier: Apache-2.0
// test_bf16_autocast.cpp: train.precision bf16 on the CPU runs the CUDA path's code (bf16
// autocast around the forward, fp32 master weights and optimizer). From the same weights,
// one step's loss is within 1% of fp32's and every parameter's gradient points the same
// way (cosine > 0.99; bf16 keeps 8 significant bits, ~0.4% a rounding); over 30 AdamW
// steps both runs train and end within 5% (trajectories drift apart by rounding). The
// bf16 run differs from fp32 at all (autocast was on), autocast is off after each forward,
// and every parameter stays float32.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <cstdio>

#include "model/forward_pass.h"
#include "model/localist_model.h"

using namespace localist;

namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.d_model = 32, c.n_layers = 2, c.context = 48, c.heads_per_block = 2, c.head_dim = 8;
  c.k_max = 4, c.k_initial = 3, c.anchor_dim = 4;
  return c;
}

constexpr int64_t kVocab = 29, kBatch = 4, kT = 48;

struct Windows {
  at::Tensor x, y;
  std::vector<std::string> domains = std::vector<std::string>(kBatch, "");
};

Windows windows() {
  auto gen = at::detail::createCPUGenerator(17);
  const auto data = at::randint(kVocab, {kBatch, kT + 1}, gen, at::kLong);
  return {data.narrow(1, 0, kT).contiguous(), data.narrow(1, 1, kT).contiguous()};
}

// The training loss at λ = 1 with penalties, as the trainer forms it.
at::Tensor step_loss(LocalistModel& m, const Windows& w, bool bf16) {
  PassSpec spec;
  spec.bf16 = bf16;
  ForwardOptions o;
  o.dial = {1.0, 1.0};
  o.penalties = true;
  const auto pass = forward_with_rules(m, w.x, w.y, w.domains, o, spec, PassLoss::kMean);
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU)) << "autocast left on after the forward";
  auto loss = pass.ce;
  for (int l = 0; l < 2; ++l) loss = loss + 0.05 * pass.result.omega[l] - 0.1 * pass.result.mutual_info[l];
  return loss;
}

}  // namespace

TEST(Bf16Autocast, OneStepFromTheSameWeightsMatchesFloat32WithinBf16Rounding) {
  const Windows w = windows();
  LocalistModel fp32(small_config(), kVocab, 8), bf16(small_config(), kVocab, 8);
  fp32.train(), bf16.train();
  const auto a = step_loss(fp32, w, false), b = step_loss(bf16, w, true);
  a.backward(), b.backward();
  const double la = a.item<double>(), lb = b.item<double>();
  EXPECT_NEAR(lb, la, 1e-2 * std::fabs(la));
  EXPECT_GT(std::fabs(lb - la), 1e-7 * std::fabs(la)) << "bf16 took fp32's exact loss: autocast was not on";
  const auto pa = fp32.parameters(), pb = bf16.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pb[i].scalar_type(), at::kFloat) << "master weights stay float32";
    if (!pa[i].grad().defined() || pa[i].grad().norm().item<double>() < 1e-8) continue;
    ASSERT_TRUE(pb[i].grad().defined()) << "parameter " << i;
    EXPECT_EQ(pb[i].grad().scalar_type(), at::kFloat) << "parameter " << i;
    const auto ga = pa[i].grad().flatten().to(at::kDouble), gb = pb[i].grad().flatten().to(at::kDouble);
    const double cosine = (ga * gb).sum().item<double>() / (ga.norm() * gb.norm()).item<double>();
    EXPECT_GT(cosine, 0.99) << "parameter " << i;
  }
}

TEST(Bf16Autocast, ThirtyCpuTrainingStepsFollowFloat32) {
  const Windows w = windows();
  auto losses = [&](bool bf16) {
    LocalistModel m(small_config(), kVocab, 8);
    m.train();
    torch::optim::AdamW opt(m.parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0.1));
    std::vector<double> out;
    for (int s = 0; s < 30; ++s) {
      auto loss = step_loss(m, w, bf16);
      opt.zero_grad();
      loss.backward();
      opt.step();
      out.push_back(loss.item<double>());
    }
    for (const auto& p : m.parameters()) EXPECT_EQ(p.scalar_type(), at::kFloat);
    return out;
  };
  const auto fp32 = losses(false), bf16 = losses(true);
  EXPECT_LT(fp32.back(), fp32.front() - 0.1);
  EXPECT_LT(bf16.back(), bf16.front() - 0.1);
  EXPECT_NEAR(bf16.back(), fp32.back(), 5e-2 * std::fabs(fp32.back()));
  std::printf("30 steps: fp32 %.4f -> %.4f, bf16 %.4f -> %.4f\n", fp32.front(), fp32.back(), bf16.front(), bf16.back());
}
