// SPDX-License-Identifier: Apache-2.0
// test_gpu.cpp: the gpu group. Exits 77 (reported by CTest as skipped, with the reason
// printed) when no CUDA device is visible; otherwise checks that the device computes a
// matmul that matches a float64 CPU reference, that the localist model's forward and
// backward on the GPU equal the float64 CPU model at λ = 0, 0.5 and 1 with rules, and
// that the NCCL backend's collectives on one rank give the values computed here.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cstdio>

#include "comm/nccl_communicator.h"
#include "model/localist_model.h"
#include "model/rules.h"
#include "run/torch_runtime.h"

TEST(Gpu, MatmulMatchesFloat64CpuReference) {
  at::manual_seed(0);
  const at::Tensor a = at::randn({512, 384}), b = at::randn({384, 256});
  const at::Tensor ref = at::matmul(a.to(at::kDouble), b.to(at::kDouble));
  const at::Tensor got = at::matmul(a.cuda(), b.cuda()).cpu().to(at::kDouble);
  // TF32 may be on for matmuls: allow its ~1e-3 relative error.
  EXPECT_LT((got - ref).abs().max().item<double>() / ref.abs().max().item<double>(), 5e-3);
}

TEST(Gpu, RuntimeSeesTheDevice) {
  const localist::TorchRuntimeInfo info = localist::torch_runtime_info();
  EXPECT_TRUE(info.cuda_available);
  EXPECT_GE(info.cuda_devices, 1);
}

TEST(Gpu, ModelForwardAndBackwardEqualTheFloat64CpuModel) {
  using namespace localist;
  ModelConfig c;
  c.d_model = 32, c.n_layers = 2, c.context = 16, c.heads_per_block = 2, c.head_dim = 8;
  c.k_max = 4, c.k_initial = 4, c.anchor_dim = 4;
  LocalistModel cpu(c, 40, 7), gpu(c, 40, 7);
  cpu.to(at::kDouble);
  gpu.to(at::Device(at::kCUDA, 0));
  auto gen = at::detail::createCPUGenerator(3);
  const auto x = at::randint(40, {2, 16}, gen, at::kLong), y = at::randint(40, {2, 16}, gen, at::kLong);
  const RuleSet rules = RuleSet::parse("rules:\n  - kind: point\n    query: {tokens: [1, 2, 3]}\n    target_block: 1\n",
                                       "test rules", c.k_max);
  const std::vector<std::string> domains(2, "");
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i) texts.push_back(std::string(1, static_cast<char>('a' + i % 26)));
  for (double dial : {0.0, 0.5, 1.0}) {
    ForwardOptions o;
    o.dial = {dial, dial};
    o.penalties = true;
    const RuleMasks mc = rules.masks(x, domains, texts, at::kCPU), mg = rules.masks(x, domains, texts, at::kCUDA);
    auto loss = [&](LocalistModel& m, const RuleMasks& masks, const at::Device& d) {
      o.rules = &masks;
      const auto r = m.forward(x.to(d), o);
      auto l = at::cross_entropy_loss(r.logits.reshape({-1, 40}), y.to(d).reshape({-1}));
      for (size_t k = 0; k < r.omega.size(); ++k) l = l + dial * (0.3 * r.omega[k] - 0.2 * r.mutual_info[k]) / 2.0;
      return std::make_pair(l, r.logits);
    };
    cpu.zero_grad();
    gpu.zero_grad();
    auto [lc, zc] = loss(cpu, mc, at::kCPU);
    auto [lg, zg] = loss(gpu, mg, at::Device(at::kCUDA, 0));
    lc.backward();
    lg.backward();
    // float32 on the GPU (TF32 matmuls allowed) against float64: relative 5e-3.
    EXPECT_LT((zg.cpu().to(at::kDouble) - zc).abs().max().item<double>(), 5e-3 * (1 + zc.abs().max().item<double>()))
        << "dial " << dial;
    EXPECT_NEAR(lg.item<double>(), lc.item<double>(), 5e-3 * std::abs(lc.item<double>())) << "dial " << dial;
    auto pc = cpu.parameters(), pg = gpu.parameters();
    for (size_t i = 0; i < pc.size(); ++i) {
      if (!pc[i].grad().defined()) continue;
      const double scale = 1e-3 + pc[i].grad().abs().max().item<double>();
      EXPECT_LT((pg[i].grad().cpu().to(at::kDouble) - pc[i].grad()).abs().max().item<double>(), 1e-2 * scale)
          << "dial " << dial << " parameter " << i;
    }
  }
}

TEST(Gpu, NcclCollectivesOnOneRankGiveTheInputs) {
  using namespace localist;
  const auto nccl = nccl_communicator_make(local_communicator(), at::Device(at::kCUDA, 0));
  auto t = at::arange(10, at::dtype(at::kFloat).device(at::kCUDA));
  const auto ref = t.clone();
  for (auto op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
    nccl->all_reduce(t, op, "test all_reduce");
    EXPECT_TRUE(at::equal(t, ref));
  }
  nccl->broadcast(t, 0, "test broadcast");
  EXPECT_TRUE(at::equal(t, ref));
  EXPECT_TRUE(at::equal(nccl->all_gather(t, "test all_gather")[0], ref));
  EXPECT_TRUE(at::equal(nccl->reduce_scatter(t, ReduceOp::kSum, "test reduce_scatter"), ref));
  auto w = nccl->all_reduce_async(t, ReduceOp::kSum, "test async");
  w->wait();
  EXPECT_TRUE(at::equal(t, ref));
  at::Tensor on_cpu = at::zeros({2});
  EXPECT_THROW(nccl->all_reduce(on_cpu, ReduceOp::kSum, "a CPU tensor"), Error);
}

int main(int argc, char** argv) {
  if (!torch::cuda::is_available()) {
    std::printf("no CUDA device visible (or LibTorch built without CUDA): skipping the gpu tests\n");
    return 77;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
