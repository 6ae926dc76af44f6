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
#include "tests/model/attention_compare.h"

using namespace localist;
using namespace localist::test;

TEST(FusedAttention, EqualsTheUnfusedPathInOutputsPenaltiesAndGradients) {
  compare_with_explicit_path({1, 64, 70, 130}, [](LocalistLayer& L, const LocalistModel& m, const at::Tensor& xn,
                                                  const at::Tensor& active, double dial, const RuleMasks* rules) {
    return run_layer(L, m, xn, active, dial, rules, true);
  });
}

// More blocks than the kernel sums in vector lanes (16): Ω's group sums take the scalar
// path, and still equal the unfused path.
TEST(FusedAttention, ManyBlocksEqualTheUnfusedPathToo) {
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    const double tol = dtype == at::kDouble ? 1e-10 : 1e-5;
    ModelConfig c = layer_config();
    // anchor_dim >= k_max: Hadamard anchors, no two blocks alike. (With 5 dimensions, 20 sign
    // anchors must repeat, and a tie in π is broken by rounding, differently on each path.)
    c.k_initial = 18, c.k_max = 20, c.heads_per_block = 1, c.d_model = 40, c.anchor_dim = 32;
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
  // A check that the comparison above can fail.
  EXPECT_GT(
      dial_mismatch([](LocalistLayer& L, const LocalistModel& m, const at::Tensor& xn, const at::Tensor& active,
                       double dial, const RuleMasks* rules) { return run_layer(L, m, xn, active, dial, rules, true); }),
      1e-3);
}

TEST(FusedAttention, FiftyTrainingStepsTakeTheUnfusedLosses) {
  const auto u = fifty_step_losses(false), f = fifty_step_losses(true);
  for (size_t s = 0; s < u.size(); ++s) EXPECT_NEAR(f[s], u[s], 1e-4 * std::fabs(u[s])) << "step " << s;
  EXPECT_LT(u.back(), u.front() - 0.1);  // it trains
}

namespace {

struct KernelRun {
  at::Tensor heads, omega;
  std::vector<at::Tensor> grads;  // qkv, key_bias, gate
};

KernelRun run_kernel(const AttentionKernelInput& in0) {
  AttentionKernelInput in = in0;
  in.qkv = in0.qkv.clone().set_requires_grad(true);
  in.key_bias = in0.key_bias.clone().set_requires_grad(true);
  in.gate = in0.gate.clone().set_requires_grad(true);
  const auto r = fused_attention(in);
  auto gen = at::detail::createCPUGenerator(77);
  const auto proj = at::empty(r.heads.sizes(), r.heads.options()).normal_(0, 1, gen);
  ((r.heads * proj).sum() + 0.7 * r.omega).backward();
  return {r.heads.detach(), r.omega.detach(), {in.qkv.grad(), in.key_bias.grad(), in.gate.grad()}};
}

}  // namespace

TEST(FusedAttention, SameBitsAtAnyThreadCount) {
  // Each gradient row has one writer and the partial sums add in a fixed order, so exact
  // resume and world-size comparisons do not depend on the thread count: the kernel's
  // outputs, Ω and gradients are the same bits on 1 and 3 threads.
  const int64_t B = 3, T = 150, H = 4, dh = 8, K = 3;
  auto gen = at::detail::createCPUGenerator(8);
  AttentionKernelInput in;
  in.qkv = at::empty({B, T, 3 * H * dh}, at::kFloat).normal_(0, 1, gen);
  in.heads = H, in.head_dim = dh, in.scale = 1.0 / std::sqrt(8.0);
  in.key_bias = -at::rand({B, T, H}, gen);
  in.gate = at::rand({B, T, H}, gen) + 0.5;
  in.rule_targets = (at::rand({B, T, T}, gen) < 0.05) & at::ones({T, T}, at::kBool).tril();
  in.rho = 1.5;
  in.hard = at::randint(K, {B, T}, gen, at::kLong);
  in.head_block = at::tensor(std::vector<int64_t>{0, 1, 2, 2}, at::kLong);
  in.blocks = K;
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const KernelRun one = run_kernel(in);
  at::set_num_threads(3);
  const KernelRun three = run_kernel(in);
  at::set_num_threads(before);
  EXPECT_TRUE(at::equal(one.heads, three.heads));
  EXPECT_TRUE(at::equal(one.omega, three.omega));
  for (size_t i = 0; i < one.grads.size(); ++i)
    EXPECT_TRUE(at::equal(one.grads[i], three.grads[i])) << "gradient " << i;
}

// The whole layer on 1 and 3 threads: its projections are LibTorch's (MKL's) products,
// whose last bits may depend on the thread count; within 1e-6 of the output's scale.
TEST(FusedAttention, TheLayerAgreesAcrossThreadCounts) {
  ThreeWindows w;
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const LayerRun one = w.run();
  at::set_num_threads(3);
  const LayerRun three = w.run();
  at::set_num_threads(before);
  expect_same(three, one, 1e-6, "3 threads against 1");
}

// With an OpenBLAS LibTorch the kernels also take OpenBLAS's threads (kernel_parallel.h);
// skipped on the supported wheel, whose MKL follows LibTorch's thread count.
TEST(FusedAttention, TheLayerAgreesOnOpenBlasThreads) {
  ThreeWindows w;
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const LayerRun one = w.run();
  const int blas_before = blas_threads();
  if (!set_blas_threads(3)) GTEST_SKIP() << "the BLAS is not OpenBLAS (its thread count is LibTorch's)";
  EXPECT_EQ(kernel_threads(), 3);
  const LayerRun blas3 = w.run();
  EXPECT_EQ(blas_threads(), 3) << "restored after each kernel";
  set_blas_threads(blas_before);
  at::set_num_threads(before);
  expect_same(blas3, one, 1e-6, "BLAS threads");
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
