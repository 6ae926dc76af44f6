// SPDX-License-Identifier: Apache-2.0
// test_sdpa_attention.cpp: the SDPA path (model/sdpa_attention.h, the default on CUDA,
// run here on CPU by LOCALIST_ATTENTION=sdpa) against the explicit path, the reference:
// outputs, Ω, I_π and every gradient at λ ∈ {0, 0.5, 1}, without and with point and route
// rules, with an inactive block, within 1e-5 (float32) and 1e-10 (float64) of the
// reference's scale; Ω's query tiles (model/omega_tiles.h) at 1, 3 and all rows per tile
// against penalty_omega on the whole α; 50 training steps take the same losses (float64
// within 1e-9, float32 within 1e-3: rounding drift through the optimizer).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "core/error.h"
#include "model/attention_kernel.h"
#include "model/omega_tiles.h"
#include "model/penalty.h"
#include "tests/model/attention_compare.h"

using namespace localist;
using namespace localist::test;

namespace {

// LOCALIST_ATTENTION for one scope.
class AttentionEnv {
 public:
  explicit AttentionEnv(const char* value) {
    if (const char* old = std::getenv("LOCALIST_ATTENTION")) old_ = old, had_ = true;
    setenv("LOCALIST_ATTENTION", value, 1);
  }
  ~AttentionEnv() { had_ ? setenv("LOCALIST_ATTENTION", old_.c_str(), 1) : unsetenv("LOCALIST_ATTENTION"); }

 private:
  std::string old_;
  bool had_ = false;
};

LayerRun run_sdpa(LocalistLayer& L, const LocalistModel& m, const at::Tensor& xn, const at::Tensor& active, double dial,
                  const RuleMasks* rules) {
  AttentionEnv sdpa("sdpa");
  return run_layer(L, m, xn, active, dial, rules, true);
}

}  // namespace

TEST(SdpaAttention, EqualsTheExplicitPathInOutputsPenaltiesAndGradients) {
  compare_with_explicit_path({1, 70, 130}, run_sdpa);
}

TEST(SdpaAttention, DiffersWhenTheBiasIsDropped) {
  EXPECT_GT(dial_mismatch(run_sdpa), 1e-3);  // the comparison above can fail
}

TEST(SdpaAttention, AnUnknownKernelNameIsAUserError) {
  AttentionEnv bad("flash");
  EXPECT_THROW(attention_path(at::zeros({1, 2, 3}), true, false), Error);
}

// Ω by query tiles equals penalty_omega on the whole α, in value and in the gradients of
// q and k, whatever the tile (one row, three rows, everything), with point-rule bonuses.
TEST(OmegaTiles, EqualTheWholeAlphaPenaltyAtAnyTileSize) {
  // 3 blocks, and 18 (more than the fused kernel's 16 vector lanes).
  for (const int64_t K : {3, 18}) {
    const int64_t B = 2, H = 4, T = 23, D = 5;
    auto gen = at::detail::createCPUGenerator(21);
    const auto q0 = at::empty({B, H, T, D}, at::kDouble).normal_(0, 1, gen);
    const auto k0 = at::empty({B, H, T, D}, at::kDouble).normal_(0, 1, gen);
    const auto hard = at::randint(K, {B, T}, gen, at::kLong);
    const auto head_block = at::tensor(std::vector<int64_t>{0, 1, 2, K - 1}, at::kLong);
    const auto targets = (at::rand({B, T, T}, gen) < 0.15) & at::ones({T, T}, at::kBool).tril();
    const double rho = 1.3;
    // The reference: the whole (B,H,T,T) α, as the explicit path forms it.
    auto q = q0.clone().set_requires_grad(true), k = k0.clone().set_requires_grad(true);
    auto z = at::matmul(q, k.transpose(-2, -1)) + rho * targets.unsqueeze(1).to(at::kDouble);
    z = z.masked_fill(at::ones({T, T}, at::kBool).triu(1), -std::numeric_limits<double>::infinity());
    const auto alpha = at::softmax(z, -1);
    const auto ref = penalty_omega(alpha, hard, head_block, K);
    ref.backward();
    ASSERT_GT(ref.item<double>(), 1e-2);
    // penalty_omega against its per-query form (autograd's formula, no hand-written backward).
    EXPECT_NEAR(ref.item<double>(), penalty_omega_per_query(alpha, hard, head_block, K).mean().item<double>(), 1e-12)
        << K << " blocks";
    for (const int64_t rows : {1, 3, 0}) {
      auto qt = q0.clone().set_requires_grad(true), kt = k0.clone().set_requires_grad(true);
      OmegaTileInput in;
      in.q = qt, in.k = kt, in.rule_targets = targets, in.rho = rho;
      in.hard = hard, in.head_block = head_block, in.blocks = K, in.tile_rows = rows;
      const auto got = penalty_omega_tiled(in);
      got.backward();
      const std::string what = std::to_string(K) + " blocks, " + std::to_string(rows) + " rows";
      EXPECT_NEAR(got.item<double>(), ref.item<double>(), 1e-12) << what;
      EXPECT_LE(scaled_diff(qt.grad(), q.grad()), 1e-12) << what << ": dq";
      EXPECT_LE(scaled_diff(kt.grad(), k.grad()), 1e-12) << what << ": dk";
    }
  }
}

// 50 AdamW steps with penalties at λ = 0.6 and 1. In float64 the SDPA path takes the explicit
// path's losses within 1e-9 relative (the same algorithm). In float32 both paths are held to
// the float64 trajectory within 1e-4 at every step: SDPA's CPU kernel sums in another order
// (and with its own exp), and float32 rounding of ~1e-7 a step grows through the optimizer to
// ~6e-5 by step 45 for either path, in opposite directions, so comparing the two float32
// runs with each other would test the drift twice over (measured: 1.3e-4 apart).
TEST(SdpaAttention, FiftyTrainingStepsTakeTheExplicitLosses) {
  std::vector<double> exact, explicit32, sdpa64, sdpa32;
  {
    AttentionEnv env("explicit");
    exact = fifty_step_losses(true, at::kDouble);
    explicit32 = fifty_step_losses(true, at::kFloat);
  }
  {
    AttentionEnv env("sdpa");
    sdpa64 = fifty_step_losses(true, at::kDouble);
    sdpa32 = fifty_step_losses(true, at::kFloat);
  }
  for (size_t i = 0; i < exact.size(); ++i) {
    const double scale = std::fabs(exact[i]);
    EXPECT_NEAR(sdpa64[i], exact[i], 1e-9 * scale) << "step " << i << " float64";
    EXPECT_NEAR(sdpa32[i], exact[i], 1e-4 * scale) << "step " << i << " SDPA float32";
    EXPECT_NEAR(explicit32[i], exact[i], 1e-4 * scale) << "step " << i << " explicit float32";
  }
  EXPECT_LT(exact.back(), exact.front() - 0.1);  // it trains
}
