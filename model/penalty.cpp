// SPDX-License-Identifier: Apache-2.0
// penalty.cpp: see penalty.h. Vectorised: group sums of alpha^2 by key block are one
// matmul with the one-hot block matrix; group sizes are a cumulative sum over keys.
#include "model/penalty.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

namespace localist {

at::Tensor penalty_omega_per_query(const at::Tensor& alpha, const at::Tensor& hard, const at::Tensor& head_block,
                                   int64_t blocks) {
  const auto onehot = at::one_hot(hard, blocks).to(alpha.scalar_type());  // (B,T,K)
  const auto sq_sum = at::matmul(alpha * alpha, onehot.unsqueeze(1));     // (B,H,T,K)
  const auto sizes = onehot.cumsum(1).unsqueeze(1);                       // (B,1,T,K): |G_k'(i)|
  // sqrt has an infinite slope at 0: clamp inside, and empty groups contribute 0.
  const auto norm = at::where(sizes > 0, at::sqrt(at::clamp_min(sq_sum, 1e-30)), at::zeros_like(sq_sum));
  const auto off = 1.0 - at::one_hot(head_block, blocks).to(alpha.scalar_type());  // (H,K)
  return (off.view({1, -1, 1, blocks}) * at::sqrt(sizes) * norm).sum(-1);
}

namespace {

// NOTE(omega-backward): d Omega / d alpha_ij = coef[i, b(j)] * alpha_ij with
// coef = w / ||alpha_{i,G}|| (w = off-block mask * sqrt|G|), so the gradient is one
// gather and one product over (B,H,T,T), instead of autograd's route back through the
// square, the group matmul and the square root (bench/bench_train: ~2x less work).
struct OmegaFunction : public torch::autograd::Function<OmegaFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& alpha, const at::Tensor& hard,
                            const at::Tensor& head_block, int64_t blocks) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const auto onehot = at::one_hot(hard, blocks).to(alpha.scalar_type());
    const auto sq_sum = at::matmul(alpha * alpha, onehot.unsqueeze(1));  // (B,H,T,K)
    const auto sizes = onehot.cumsum(1).unsqueeze(1);
    const auto off = 1.0 - at::one_hot(head_block, blocks).to(alpha.scalar_type());
    const auto w = off.view({1, -1, 1, blocks}) * at::sqrt(sizes);
    const auto live = sizes.gt(0) & sq_sum.ge(1e-30);
    const auto norm = at::sqrt(at::clamp_min(sq_sum, 1e-30));
    const auto n = static_cast<double>(alpha.size(0) * alpha.size(1) * alpha.size(2));
    auto value = at::where(sizes > 0, w * norm, at::zeros_like(norm)).sum() / n;
    ctx->save_for_backward({alpha, at::where(live, w / norm, at::zeros_like(norm)) / n, hard});
    return value;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& alpha = saved[0];
    const auto& coef = saved[1];
    const auto idx = saved[2].view({alpha.size(0), 1, 1, alpha.size(3)}).expand(alpha.sizes());
    return {at::gather(coef, -1, idx) * alpha * grads[0], at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor penalty_omega(const at::Tensor& alpha, const at::Tensor& hard, const at::Tensor& head_block,
                         int64_t blocks) {
  return OmegaFunction::apply(alpha, hard, head_block, blocks);
}

at::Tensor routing_entropy(const at::Tensor& pi) {
  return -(pi * at::log(at::clamp_min(pi, 1e-30))).sum(-1) / std::log(2.0);
}

at::Tensor routing_mutual_information(const at::Tensor& pi) {
  const auto mean_pi = pi.reshape({-1, pi.size(-1)}).mean(0);
  return routing_entropy(mean_pi) - routing_entropy(pi).mean();
}

}  // namespace localist
