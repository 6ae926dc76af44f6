// SPDX-License-Identifier: Apache-2.0
// penalty.h: M5's training penalties, on the attention and routing the model used.
// Omega: off-block group lasso, for head h (block k) and query i,
//   sum over blocks k' != k of sqrt(|G_k'(i)|) * || alpha_{i, G_k'(i)} ||_2,
// with G_k'(i) = {j <= i : b(j) = k'} (hard assignment), averaged over heads, queries
// and sequences (with a hand-written backward). I_pi: token-block mutual information
// H(mean pi) - mean H(pi_i), bits.
#pragma once
#include <ATen/core/Tensor.h>

namespace localist {

// alpha (B,H,T,T) causal attention; hard (B,T) int64 block of each key in [0, K);
// head_block (H) int64 block of each head. Returns a scalar tensor (differentiable in alpha).
at::Tensor penalty_omega(const at::Tensor& alpha, const at::Tensor& hard, const at::Tensor& head_block, int64_t blocks);

// Per-(sequence, head, query) values before averaging: (B,H,T).
at::Tensor penalty_omega_per_query(const at::Tensor& alpha, const at::Tensor& hard, const at::Tensor& head_block,
                                   int64_t blocks);

// pi (B,T,K) rows on the simplex. Returns I_pi in bits (scalar, differentiable).
at::Tensor routing_mutual_information(const at::Tensor& pi);

// Per-token routing entropy in bits: (B,T).
at::Tensor routing_entropy(const at::Tensor& pi);

}  // namespace localist
