// SPDX-License-Identifier: Apache-2.0
// pool_routing.h: how a pool answers a window it was not told the domain of (DESIGN.md
// §1 M11 step 6), from each LLM's per-token bits on it: argmin routing (the LLM with the
// shortest code length on the first m tokens), Bayesian model averaging (next-token
// distributions mixed with weights ∝ prior · 2^(−CL(prefix)), so a window's mixture
// code length is −log2 Σ prior · 2^(−CL), never more than min over LLMs of CL + log2
// 1/prior), and the oracle (the best LLM per window). Pure float64 arithmetic.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace localist {

// bits: (L, N, T) float64, LLM × window × position. The LLM index chosen for each
// window by its first m positions (m ≥ T: the whole window); ties go to the lower index.
at::Tensor route_argmin(const at::Tensor& bits, int64_t m);
// (N, T): the mixture's bits at each position (priors: L positive weights, normalised here).
at::Tensor route_mixture_bits(const at::Tensor& bits, const std::vector<double>& priors);
// The mixture's weights before each position: (L, N, T), summing to 1 over L.
at::Tensor route_mixture_weights(const at::Tensor& bits, const std::vector<double>& priors);
// (N): each window's bits under its own index `choice` (N, long) — e.g. the tag's LLM.
at::Tensor route_bits_of(const at::Tensor& bits, const at::Tensor& choice);

}  // namespace localist
