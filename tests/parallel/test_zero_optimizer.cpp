// SPDX-License-Identifier: Apache-2.0
// test_zero_optimizer.cpp: ZeRO-1 against torch's AdamW on one rank. N in-process
// ranks each hold a different gradient; after every step each rank's parameters equal
// torch's AdamW driven by the summed gradient (float32, 1e-6 relative: the chunks cut
// vectorised loops elsewhere), including a parameter without a gradient anywhere
// (skipped, as torch skips it) and one with a gradient on one rank only. The gathered
// moments equal torch's; re-sharding them onto another group size continues the same
// trajectory; a rank holds 1/N of the moments.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <mutex>
#include <vector>

#include "comm/in_process_group.h"
#include "parallel/zero_optimizer.h"

using namespace localist;

namespace {

const std::vector<std::vector<int64_t>> kShapes{{5, 3}, {7}, {11, 2}, {1}, {4, 4}};
const std::vector<double> kDecay{0.1, 0.0, 0.1, 0.0, 0.05};
constexpr double kLr = 0.01;

std::vector<at::Tensor> fresh_params() {
  auto gen = at::detail::createCPUGenerator(5);
  std::vector<at::Tensor> out;
  for (const auto& s : kShapes) out.push_back(at::empty(s, at::kFloat).normal_(0, 1, gen).requires_grad_(true));
  return out;
}

// Rank r's gradient of parameter i at step t; undefined where the test wants none.
at::Tensor grad_of(int r, size_t i, int t) {
  if (i == 1 && t == 0) return at::Tensor();            // no gradient anywhere at step 0
  if (i == 3 && t == 1 && r != 0) return at::Tensor();  // only rank 0's at step 1
  auto gen = at::detail::createCPUGenerator(1000 * t + 10 * i + r);
  return at::empty(kShapes[i], at::kFloat).normal_(0, 1, gen);
}

at::Tensor summed(int ranks, size_t i, int t) {
  at::Tensor s;
  for (int r = 0; r < ranks; ++r) {
    const auto g = grad_of(r, i, t);
    if (g.defined()) s = s.defined() ? s + g : g.clone();
  }
  return s;
}

void set_grads(const std::vector<at::Tensor>& params, int r, int ranks, int t, bool sum) {
  for (size_t i = 0; i < params.size(); ++i) {
    const auto g = sum ? summed(ranks, i, t) : grad_of(r, i, t);
    at::Tensor p = params[i];
    if (g.defined()) {
      p.mutable_grad() = g;
    } else {
      p.mutable_grad() = at::Tensor();
    }
  }
}

struct Reference {
  std::vector<at::Tensor> params = fresh_params();
  std::unique_ptr<torch::optim::AdamW> opt;
  Reference() {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    for (size_t i = 0; i < params.size(); ++i) {
      auto o = std::make_unique<torch::optim::AdamWOptions>(kLr);
      o->betas({0.9, 0.95}).weight_decay(kDecay[i]).eps(1e-8);
      groups.emplace_back(std::vector<at::Tensor>{params[i]}, std::move(o));
    }
    opt = std::make_unique<torch::optim::AdamW>(groups);
  }
  void step(int ranks, int t) {
    set_grads(params, 0, ranks, t, true);
    opt->step();
  }
  torch::optim::AdamWParamState* state(size_t i) {
    auto it = opt->state().find(static_cast<void*>(params[i].unsafeGetTensorImpl()));
    return it == opt->state().end() ? nullptr : static_cast<torch::optim::AdamWParamState*>(it->second.get());
  }
};

void expect_close(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const double err = ((a - b).abs() / (b.abs() + 1e-3)).max().item<double>();
  EXPECT_LT(err, 1e-6) << what;
}

}  // namespace

TEST(ZeroOptimizer, EqualsTorchAdamWOnTheSummedGradientAndReshards) {
  constexpr int kRanks = 3, kSteps = 4, kMore = 3;
  Reference ref;
  for (int t = 0; t < kSteps; ++t) ref.step(kRanks, t);
  std::vector<FullMoments> gathered;
  std::mutex mu;
  int64_t total = 0, state_bytes = 0;
  for (const auto& s : kShapes) total += at::empty(s).numel();
  const auto out = in_process_run(kRanks, [&](std::shared_ptr<Communicator> c) {
    auto params = fresh_params();
    ZeroAdamW z(c, params, kDecay, ZeroAdamW::Options{0.9, 0.95, 1e-8});
    for (int t = 0; t < kSteps; ++t) {
      set_grads(params, c->rank(), kRanks, t, false);
      z.reduce_gradients("test gradients");
      z.step(kLr, "test parameters");
    }
    for (size_t i = 0; i < params.size(); ++i) {
      expect_close(params[i], ref.params[i], "rank " + std::to_string(c->rank()) + ", parameter " + std::to_string(i));
    }
    auto state = z.gather_state("test moments");
    std::lock_guard<std::mutex> lock(mu);
    if (c->rank() == 0) gathered = state;
    if (c->rank() == 0) state_bytes = z.state_bytes();
  });
  for (const auto& o : out) ASSERT_TRUE(o.ok) << o.error;
  ASSERT_EQ(gathered.size(), kShapes.size());
  for (size_t i = 0; i < kShapes.size(); ++i) {
    auto* st = ref.state(i);
    ASSERT_NE(st, nullptr);
    EXPECT_EQ(gathered[i].step, st->step()) << i;
    expect_close(gathered[i].exp_avg, st->exp_avg(), "exp_avg " + std::to_string(i));
    expect_close(gathered[i].exp_avg_sq, st->exp_avg_sq(), "exp_avg_sq " + std::to_string(i));
  }
  EXPECT_EQ(gathered[1].step, kSteps - 1);  // no gradient anywhere at step 0: no step
  EXPECT_EQ(gathered[3].step, kSteps);      // one rank's gradient is a gradient
  // A rank holds its chunk: ceil(total / N) elements of each moment.
  EXPECT_EQ(state_bytes, 2 * 4 * ((total + kRanks - 1) / kRanks));

  // Elastic: the gathered state, loaded onto 2 ranks, continues torch's trajectory.
  for (int t = kSteps; t < kSteps + kMore; ++t) ref.step(2, t);
  const auto more = in_process_run(2, [&](std::shared_ptr<Communicator> c) {
    auto params = fresh_params();
    {
      // The parameters as they were after kSteps (recomputed: the same arithmetic as above).
      Reference again;
      for (int t = 0; t < kSteps; ++t) again.step(kRanks, t);
      at::NoGradGuard no_grad;
      for (size_t i = 0; i < params.size(); ++i) params[i].copy_(again.params[i]);
    }
    ZeroAdamW z(c, params, kDecay, ZeroAdamW::Options{0.9, 0.95, 1e-8});
    z.load_state(gathered);
    for (int t = kSteps; t < kSteps + kMore; ++t) {
      set_grads(params, c->rank(), 2, t, false);
      z.reduce_gradients("test gradients");
      z.step(kLr, "test parameters");
    }
    for (size_t i = 0; i < params.size(); ++i) {
      expect_close(params[i], ref.params[i],
                   "after re-sharding, rank " + std::to_string(c->rank()) + ", parameter " + std::to_string(i));
    }
  });
  for (const auto& o : more) ASSERT_TRUE(o.ok) << o.error;
}
