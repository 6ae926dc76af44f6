// SPDX-License-Identifier: Apache-2.0
// block_attention.h: the attention sublayer of the localist transformer (DESIGN.md §1
// M3-M5): per active block's heads, causal attention with the locality bias
// −λγ(1 − π_jk) and the rules' +ρ on their targets, outputs combined by the gates
// g_ik = (1 − λ) + λKπ_ik, and the penalties Ω (group lasso) and I_π when asked.
// Under block parallelism only the shard's blocks are computed and the partial
// outputs summed over the group (sequence parallel: xn is the gathered whole sequence
// and the output is this rank's positions). Limits: the explicit path keeps (B,H,T,T)
// tensors for backward; the fused (CPU) and SDPA (CUDA) paths keep none (which one runs:
// model/attention_kernel.h).
#pragma once
#include <ATen/core/Tensor.h>

#include "model/localist_model.h"

namespace localist {

// The attention sublayer of one layer on normalised input xn (B,T,d): M2-M4 and the
// penalties; exposed for tests that compare it with plain multi-head attention.
// routing_trace (without trace): keep only the routing (pi, router, hard, gate), which
// every rank of a shard computes whole, so it is allowed under block parallelism.
// fused: the kernel attention_path() picks (fused CPU kernel or SDPA; never with trace).
at::Tensor localist_attention(const LocalistLayer& layer, const at::Tensor& xn, const at::Tensor& anchors,
                              const at::Tensor& active_blocks, const ModelConfig& c, double dial,
                              const RuleMasks* rules, bool penalties, bool trace, ForwardResult& out,
                              const BlockShard* shard = nullptr, bool routing_trace = false, bool fused = false);

}  // namespace localist
