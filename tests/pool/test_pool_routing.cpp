// SPDX-License-Identifier: Apache-2.0
// test_pool_routing.cpp: the pool's routers (pool/pool_routing.h) against hand
// computations and the bound that must hold: the mixture weights of a two-LLM window
// computed by hand; argmin picks the LLM with the smallest prefix code length; on every
// window of random data the mixture's bits are ≤ min over LLMs of (bits + log2 1/prior)
// and equal −log2 Σ prior · 2^(−CL) (telescoping), within 1e-9 bits.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>

#include "pool/pool_routing.h"

using namespace localist;

TEST(PoolRouting, MixtureWeightsByHand) {
  // Two LLMs, one window of three positions: bits (1, 3, 2) and (2, 1, 1); priors 0.75, 0.25.
  const auto bits = at::tensor(std::vector<double>{1, 3, 2, 2, 1, 1}, at::kDouble).view({2, 1, 3});
  const auto w = route_mixture_weights(bits, {3.0, 1.0});  // normalised inside
  // Before position 0: the priors. Before 1: ∝ 0.75·2^-1, 0.25·2^-2 -> 6/7, 1/7.
  // Before 2: ∝ 0.75·2^-4, 0.25·2^-3 -> 0.6, 0.4.
  const double expect[2][3] = {{0.75, 6.0 / 7, 0.6}, {0.25, 1.0 / 7, 0.4}};
  for (int l = 0; l < 2; ++l) {
    for (int t = 0; t < 3; ++t) EXPECT_NEAR(w[l][0][t].item<double>(), expect[l][t], 1e-12) << l << "," << t;
  }
  // Position 1's mixture probability: 6/7 · 2^-3 + 1/7 · 2^-1.
  const auto mix = route_mixture_bits(bits, {3.0, 1.0});
  EXPECT_NEAR(mix[0][1].item<double>(), -std::log2(6.0 / 7 / 8 + 1.0 / 7 / 2), 1e-12);
}

TEST(PoolRouting, ArgminPicksTheShortestPrefix) {
  // LLM 1 is better on the first two positions, LLM 0 over the whole window.
  const auto bits = at::tensor(std::vector<double>{3, 3, 0, 0, 1, 1, 4, 4}, at::kDouble).view({2, 1, 4});
  EXPECT_EQ(route_argmin(bits, 2).item<int64_t>(), 1);
  EXPECT_EQ(route_argmin(bits, 4).item<int64_t>(), 0);
  EXPECT_EQ(route_argmin(bits, 1000).item<int64_t>(), 0);  // past the window: the whole window
  EXPECT_EQ(route_bits_of(bits, at::tensor(std::vector<int64_t>{1}, at::kLong)).item<double>(), 10.0);
  // Ties go to the lower index.
  const auto tie = at::ones({3, 2, 5}, at::kDouble);
  EXPECT_EQ(route_argmin(tie, 3).sum().item<int64_t>(), 0);
}

TEST(PoolRouting, MixtureNeverLosesMoreThanThePriorOnAnyWindow) {
  at::manual_seed(5);
  const int64_t L = 3, N = 200, T = 32;
  const auto bits = at::rand({L, N, T}, at::kDouble) * 12.0;  // 0..12 bits per token
  const std::vector<double> priors{0.6, 0.3, 0.1};
  const auto mix = route_mixture_bits(bits, priors).sum(1);  // (N)
  const auto cl = bits.sum(2);                               // (L, N)
  for (int64_t n = 0; n < N; ++n) {
    double best = 1e300, total = 0;
    for (int64_t l = 0; l < L; ++l) {
      best = std::min(best, cl[l][n].item<double>() + std::log2(1.0 / priors[l]));
      total += priors[l] * std::exp2(-cl[l][n].item<double>());
    }
    ASSERT_LE(mix[n].item<double>(), best + 1e-9) << "window " << n;
    EXPECT_NEAR(mix[n].item<double>(), -std::log2(total), 1e-9) << "window " << n;
  }
}
