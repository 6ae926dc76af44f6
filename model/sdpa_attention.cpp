// SPDX-License-Identifier: Apache-2.0
// sdpa_attention.cpp: see sdpa_attention.h. Shapes: B sequences, T positions, H heads of
// width d_h; D = d_h (+1 with the key bias) rounded up to a multiple of 8, the width the
// memory-efficient and flash kernels want.
#include "model/sdpa_attention.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "core/check.h"
#include "model/omega_tiles.h"

namespace localist {

AttentionKernelOutput sdpa_attention(const AttentionKernelInput& in) {
  const int64_t B = in.qkv.size(0), T = in.qkv.size(1), H = in.heads, dh = in.head_dim;
  LOCALIST_CHECK(H > 0 && in.qkv.size(2) == 3 * H * dh, "sdpa attention: qkv width ", in.qkv.size(2), " is not 3 x ", H,
                 " heads x ", dh);
  const auto qkv = in.qkv.view({B, T, 3, H, dh}).permute({2, 0, 3, 1, 4}).unbind(0);
  // The scale is applied to q here (SDPA gets scale 1), so the bias column is not scaled.
  auto q = qkv[0] * in.scale, k = qkv[1];
  const auto& v = qkv[2];
  if (in.key_bias.defined()) {
    const auto beta = in.key_bias.permute({0, 2, 1}).unsqueeze(-1).to(q.scalar_type());  // (B,H,T,1)
    q = at::cat({q, at::ones_like(beta)}, -1);
    k = at::cat({k, beta}, -1);
  }
  const int64_t width = (std::max(q.size(-1), dh) + 7) / 8 * 8;
  const auto pad = [&](const at::Tensor& t) {
    return t.size(-1) == width ? t : at::constant_pad_nd(t, {0, width - t.size(-1)});
  };
  at::Tensor mask;
  if (in.rule_targets.defined()) {
    // Point rules' +rho, causal by -inf: an additive mask, so no is_causal.
    const auto causal = at::ones({T, T}, in.rule_targets.options()).tril();
    const auto bonus = in.rule_targets.to(q.scalar_type()) * in.rho;
    mask = bonus.masked_fill(causal.logical_not(), -std::numeric_limits<double>::infinity()).unsqueeze(1);
  }
  const std::optional<at::Tensor> attn_mask = mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt;
  auto heads = at::scaled_dot_product_attention(pad(q), pad(k), pad(v), attn_mask, 0.0, !mask.defined(), 1.0);
  heads = heads.narrow(-1, 0, dh).transpose(1, 2);  // (B,T,H,d_h)
  if (in.gate.defined()) heads = heads * in.gate.unsqueeze(-1).to(heads.scalar_type());
  AttentionKernelOutput out;
  out.heads = heads;
  if (in.hard.defined()) {
    OmegaTileInput o;
    o.q = q, o.k = k, o.rule_targets = in.rule_targets, o.rho = in.rho;
    o.hard = in.hard, o.head_block = in.head_block, o.blocks = in.blocks;
    out.omega = penalty_omega_tiled(o);
  }
  return out;
}

}  // namespace localist
