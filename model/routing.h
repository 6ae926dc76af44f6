// SPDX-License-Identifier: Apache-2.0
// routing.h: M2 routing (DESIGN.md §1): each token's router vector r_i = W_r · LN(x_i),
// its distribution over the active blocks π_ik = softmax_k(r_i · a_k / τ), route rules
// (M6) forcing π to one-hot, and the hard assignment b(i) = argmax_k π_ik. Also the map
// from block slot ids to indices among the active blocks that rules need.
#pragma once
#include <ATen/core/Tensor.h>

#include "model/localist_model.h"

namespace localist {

struct Routing {
  at::Tensor router;  // (B,T,d_a) r_i
  at::Tensor pi;      // (B,T,K) over the active blocks
  at::Tensor hard;    // (B,T) int64 argmax, an index into the active blocks
};

// xn: the layer's normalised input (B,T,d). `slot_map` from block_slot_to_active
// (needed only with route rules). Throws when a route rule names an inactive slot.
// fused: π and r through model/fused_routing.h where it applies (r then carries no gradient).
Routing route_tokens(const at::Tensor& xn, const at::Tensor& router_w, const at::Tensor& anchors,
                     const at::Tensor& active_blocks, double tau, const RuleMasks* rules, const at::Tensor& slot_map,
                     bool fused = false);

// Slot id -> index among the active blocks (-1 for inactive), on the device of `active_blocks`.
at::Tensor block_slot_to_active(const at::Tensor& active_blocks, int64_t k_max);
// `slots` (any shape, -1 for none) mapped through `map` (-1 stays -1).
at::Tensor block_map_slots(const at::Tensor& slots, const at::Tensor& map);

}  // namespace localist
