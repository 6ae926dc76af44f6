// SPDX-License-Identifier: Apache-2.0
// bounds.h: the M8 bounds (DESIGN.md §1), checked on the attention a model used, not
// assumed: the off-target mass ε_i ≤ (|O_i|/|A_i|)·exp(−Δ_i), the entropy bound
// H(α_i) ≤ h2(ε_i) + (1−ε_i)·log2|A_i| + ε_i·log2|O_i|, the logit-gap lower bound and
// λ*, per (sequence, head, query). A bound that fails on any query is a bug.
#pragma once
#include <ATen/core/Tensor.h>

namespace localist {

// The three M8 checks for one layer. on_target: (B,H,T,T) bool, A_i per (head, query),
// within the causal window. Returns per-(b,h,i) tensors; `valid` marks pairs with
// both on- and off-target keys. Exposed so tests can feed it broken inputs.
struct BoundCheck {
  at::Tensor valid, epsilon, delta, delta_lower, s_max, eps_holds, entropy_holds, delta_holds, lambda_star;
};
BoundCheck bounds_check(const at::Tensor& alpha, const at::Tensor& logits, const at::Tensor& scores,
                        const at::Tensor& pi_key, const at::Tensor& on_target, const at::Tensor& fired, double dial,
                        double gamma, double rho, double epsilon0);

// Per-(b,h,i) attention entropy in bits, 0 above the causal diagonal handled.
at::Tensor attention_entropy(const at::Tensor& alpha);

}  // namespace localist
