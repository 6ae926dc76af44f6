// SPDX-License-Identifier: Apache-2.0
// test_grad_sync.cpp: under mpirun, gradients summed by GradientSync (buckets started
// from hooks during backward, two micro-batches accumulated) equal the sum over ranks
// computed here in float64 from every rank's known inputs; a parameter that gets no
// gradient keeps an undefined .grad; buckets do start inside backward.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "parallel/grad_sync.h"
#include "tests/main/mpi_gtest_main.h"

using namespace localist;

namespace {
// Inputs of rank r, micro-batch m: fixed by (r, m) so that every rank can recompute all.
at::Tensor input_of(int r, int m, int64_t n) {
  return at::arange(n, at::kDouble).mul(0.1 * (r + 1)).add(0.37 * m - 0.5).sin();
}
}  // namespace

TEST(GradientSync, SumsOverRanksWhileBackwardRuns) {
  const auto world = localist::test::mpi_test_world();
  auto gen = at::detail::createCPUGenerator(1);
  // Same initial values everywhere; sizes that make several small buckets.
  auto a = at::randn({7, 3}, gen, at::kFloat).requires_grad_(true);
  auto b = at::randn({5}, gen, at::kFloat).requires_grad_(true);
  auto unused = at::randn({11}, gen, at::kFloat).requires_grad_(true);
  auto c = at::randn({3, 4}, gen, at::kFloat).requires_grad_(true);
  GradientSync sync(world, {a, b, unused, c}, /*bucket_bytes=*/64);
  EXPECT_GE(sync.bucket_count(), 3);
  // loss = sum(tanh(x a) c) + sum(b * y); x (2,7), y (5): gradients depend on the inputs.
  auto loss_of = [&](const at::Tensor& av, const at::Tensor& bv, const at::Tensor& cv, int r, int m) {
    const auto x = input_of(r, m, 14).view({2, 7}).to(av.scalar_type());
    const auto y = input_of(r, m + 5, 5).to(av.scalar_type());
    return at::tanh(x.matmul(av)).matmul(cv).sum() + (bv * y).sum();
  };
  for (int step = 0; step < 2; ++step) {
    for (auto* t : {&a, &b, &unused, &c}) t->mutable_grad() = at::Tensor();
    loss_of(a, b, c, world->rank(), 0).backward();
    sync.arm("test gradients");
    loss_of(a, b, c, world->rank(), 1).backward();
    sync.finish();
    EXPECT_GE(sync.started_in_backward(), 1) << "no bucket started during backward";
    // Reference: every rank's two micro-batches, in float64.
    auto ad = a.detach().to(at::kDouble).requires_grad_(true), bd = b.detach().to(at::kDouble).requires_grad_(true);
    auto cd = c.detach().to(at::kDouble).requires_grad_(true);
    for (int r = 0; r < world->size(); ++r) {
      for (int m = 0; m < 2; ++m) loss_of(ad, bd, cd, r, m).backward();
    }
    EXPECT_LE((a.grad().to(at::kDouble) - ad.grad()).abs().max().item<double>(), 1e-5);
    EXPECT_LE((b.grad().to(at::kDouble) - bd.grad()).abs().max().item<double>(), 1e-5);
    EXPECT_LE((c.grad().to(at::kDouble) - cd.grad()).abs().max().item<double>(), 1e-5);
    EXPECT_FALSE(unused.grad().defined());
  }
}
