// penalty.cpp: see penalty.h. Vectorised: group sums of alpha^2 by key block are one
// matmul with the one-hot block matrix; group sizes are a cumulative sum over keys.
#include "model/penalty.h"

#include <ATen/ATen.h>

#include <cmath>

namespace localist {

at::Tensor penalty_omega_per_query(const at::Tensor& alpha, const at::Tensor& hard, const at::Tensor& head_block,
                                   int64_t blocks) {
  const auto onehot = at::one_hot(hard, blocks).to(alpha.scalar_type());  // (B,T,K)
  const auto sq_sum = at::matmul(alpha * alpha, onehot.unsqueeze(1));       // (B,H,T,K)
  const auto sizes = onehot.cumsum(1).unsqueeze(1);                          // (B,1,T,K): |G_k'(i)|
  // sqrt has an infinite slope at 0: clamp inside, and empty groups contribute 0.
  const auto norm = at::where(sizes > 0, at::sqrt(at::clamp_min(sq_sum, 1e-30)), at::zeros_like(sq_sum));
  const auto off = 1.0 - at::one_hot(head_block, blocks).to(alpha.scalar_type());  // (H,K)
  return (off.view({1, -1, 1, blocks}) * at::sqrt(sizes) * norm).sum(-1);
}

at::Tensor penalty_omega(const at::Tensor& alpha, const at::Tensor& hard, const at::Tensor& head_block, int64_t blocks) {
  return penalty_omega_per_query(alpha, hard, head_block, blocks).mean();
}

at::Tensor routing_entropy(const at::Tensor& pi) {
  return -(pi * at::log(at::clamp_min(pi, 1e-30))).sum(-1) / std::log(2.0);
}

at::Tensor routing_mutual_information(const at::Tensor& pi) {
  const auto mean_pi = pi.reshape({-1, pi.size(-1)}).mean(0);
  return routing_entropy(mean_pi) - routing_entropy(pi).mean();
}

}  // namespace localist
