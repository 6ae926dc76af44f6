// SPDX-License-Identifier: Apache-2.0
// omega_tiles.h: M5's Ω from the attention's logits without keeping α: query tiles of
// (B,H,rows,keys) are formed, reduced and dropped in forward, and recomputed one at a time
// in backward. Exact (the same sum as model/penalty.h's penalty_omega on the whole α),
// so memory is linear in the context for a fixed tile and the cost is one more QKᵀ
// forward and two in backward. Limits: point-rule bonuses are read from a (B,T,T) mask.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace localist {

struct OmegaTileInput {
  at::Tensor q, k;          // (B,H,T,D): q already scaled; the key bias may ride as a column
  at::Tensor rule_targets;  // (B,T,T) bool: +rho on these logits, or undefined
  double rho = 0;
  at::Tensor hard;        // (B,T) int64 key blocks in [0, blocks)
  at::Tensor head_block;  // (H) int64
  int64_t blocks = 0;
  int64_t tile_rows = 0;  // query rows per tile; 0: about 4M logits a tile
};

// Ω averaged over (sequence, head, query): a scalar differentiable in q and k.
at::Tensor penalty_omega_tiled(const OmegaTileInput& in);

}  // namespace localist
