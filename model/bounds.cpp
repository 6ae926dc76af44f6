// SPDX-License-Identifier: Apache-2.0
// bounds.cpp: see bounds.h. Everything is computed in float64 from the traced tensors.
#include "model/bounds.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace localist {
namespace {

constexpr double kLn2 = 0.69314718055994530942;

at::Tensor log2_count(const at::Tensor& n) { return at::log2(at::clamp_min(n, 1.0)); }

at::Tensor binary_entropy(const at::Tensor& e) {
  const auto p = at::clamp(e, 0.0, 1.0);
  return -(at::xlogy(p, p) + at::xlogy(1.0 - p, 1.0 - p)) / kLn2;
}

}  // namespace

at::Tensor attention_entropy(const at::Tensor& alpha) { return -at::xlogy(alpha, alpha).sum(-1) / kLn2; }

BoundCheck bounds_check(const at::Tensor& alpha_in, const at::Tensor& logits_in, const at::Tensor& scores_in,
                        const at::Tensor& pi_key_in, const at::Tensor& on_target, const at::Tensor& fired, double dial,
                        double gamma, double rho, double epsilon0) {
  const auto alpha = alpha_in.to(at::kDouble), z = logits_in.to(at::kDouble), s = scores_in.to(at::kDouble);
  const auto pi_key = pi_key_in.to(at::kDouble);  // (B,H,1,T): pi of each key for the head's block
  const int64_t T = alpha.size(-1);
  const auto causal = at::ones({T, T}, alpha.options().dtype(at::kBool)).tril();
  const auto A = on_target & causal;
  const auto O = causal & A.logical_not();
  const auto nA = A.sum(-1).to(at::kDouble), nO = O.sum(-1).to(at::kDouble);
  BoundCheck b;
  b.valid = nA.gt(0) & nO.gt(0);
  const double inf = std::numeric_limits<double>::infinity();
  b.epsilon = (alpha * O).sum(-1);
  const auto minA = z.masked_fill(A.logical_not(), inf).amin(-1);
  const auto maxO = z.masked_fill(O.logical_not(), -inf).amax(-1);
  b.delta = minA - maxO;
  // Bound 1: eps <= |O|/|A| exp(-Delta); relative float slack only.
  const auto bound1 = nO / at::clamp_min(nA, 1.0) * at::exp(-b.delta);
  b.eps_holds = b.epsilon.le(bound1 * (1 + 1e-5) + 1e-7);
  // Bound 2: H(alpha) <= h2(eps) + (1 - eps) log2|A| + eps log2|O|.
  const auto bound2 = binary_entropy(b.epsilon) + (1.0 - b.epsilon) * log2_count(nA) + b.epsilon * log2_count(nO);
  b.entropy_holds = attention_entropy(alpha).le(bound2 + 1e-5);
  // Delta >= rho [fired] + dial gamma (min_A pi - max_O pi) - 2 S_i, S_i = max_{j<=i} |s_ij|.
  b.s_max = s.abs().masked_fill(causal.logical_not(), 0.0).amax(-1);
  const auto piA = pi_key.expand_as(alpha).masked_fill(A.logical_not(), inf).amin(-1);
  const auto piO = pi_key.expand_as(alpha).masked_fill(O.logical_not(), -inf).amax(-1);
  b.delta_lower = rho * fired.unsqueeze(1).to(at::kDouble) + dial * gamma * (piA - piO) - 2.0 * b.s_max;
  b.delta_holds = b.delta.ge(b.delta_lower - 1e-4 * (1.0 + b.s_max));
  // lambda*: the dial that guarantees fidelity >= 1 - eps0 under hard routing.
  b.lambda_star = (2.0 * b.s_max + at::log(nO / (at::clamp_min(nA, 1.0) * epsilon0))) / std::max(gamma, 1e-12);
  return b;
}

}  // namespace localist
