// SPDX-License-Identifier: Apache-2.0
// model_flops.cpp: see model_flops.h.
#include "model/model_flops.h"

namespace localist {

double model_flops_per_token(const ModelConfig& m, int64_t active_blocks, int64_t vocab) {
  const double d = static_cast<double>(m.d_model), L = static_cast<double>(m.n_layers);
  const double A = static_cast<double>(active_blocks * m.heads_per_block * m.head_dim);
  const double f = static_cast<double>(m.ffn_mult * m.d_model), T = static_cast<double>(m.context);
  const double da = static_cast<double>(m.anchor_dim), K = static_cast<double>(active_blocks);
  // Weights a token meets in matrix products, per layer: q/k/v (3A x d), output (d x A),
  // router (d_a x d), anchors (K x d_a), FFN (f x d, d x f); then the head (V x d).
  const double per_layer = 3 * A * d + d * A + da * d + K * da + 2 * f * d;
  const double weights = L * per_layer + static_cast<double>(vocab) * d;
  return 6 * weights + 12 * L * A * T;
}

}  // namespace localist
