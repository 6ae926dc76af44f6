// SPDX-License-Identifier: Apache-2.0
// routing.cpp: see routing.h.
#include "model/routing.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "model/fused_routing.h"

namespace localist {

at::Tensor block_slot_to_active(const at::Tensor& active_blocks, int64_t k_max) {
  auto map = at::full({k_max}, -1, active_blocks.options());
  map.index_put_({active_blocks}, at::arange(active_blocks.size(0), active_blocks.options()));
  return map;
}

at::Tensor block_map_slots(const at::Tensor& slots, const at::Tensor& map) {
  const auto idx = map.index_select(0, slots.clamp_min(0).flatten()).view(slots.sizes());
  return at::where(slots >= 0, idx, at::full_like(idx, -1));
}

Routing route_tokens(const at::Tensor& xn, const at::Tensor& router_w, const at::Tensor& anchors,
                     const at::Tensor& active_blocks, double tau, const RuleMasks* rules, const at::Tensor& slot_map,
                     bool fused) {
  Routing out;
  const auto a = anchors.index_select(0, active_blocks);
  if (fused && fused_routing_supported(xn)) {
    auto r = fused_routing(xn, router_w, a, tau);
    out.pi = r.pi, out.router = r.router;
  } else {
    out.router = at::linear(xn, router_w);
    out.pi = at::softmax(at::matmul(out.router, a.t()) / tau, -1);
  }
  if (rules && rules->route_block.defined()) {
    const auto idx = block_map_slots(rules->route_block, slot_map);
    if ((idx.lt(0) & rules->route_block.ge(0)).any().item<bool>()) {
      throw Error("a route rule sends tokens to a block slot that is not active; activate it or fix the rules file");
    }
    const auto forced = idx.ge(0);
    const int64_t K = active_blocks.size(0);
    out.pi = at::where(forced.unsqueeze(-1), at::one_hot(idx.clamp_min(0), K).to(out.pi.scalar_type()), out.pi);
  }
  out.hard = out.pi.argmax(-1);
  return out;
}

}  // namespace localist
