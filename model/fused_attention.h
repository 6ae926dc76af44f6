// SPDX-License-Identifier: Apache-2.0
// fused_attention.h: M3's attention with M5's Ω computed inside, fused on the CPU
// (model/fused_attention_kernel.h): key biases and rule targets added in the kernel,
// causal products only, no (B,H,T,T) tensor kept for backward (each tile is recomputed).
// Used for training and plain evaluation; traces (metrics, bounds, the report) and
// other devices or dtypes use the unfused path in block_attention.cpp, the reference.
#pragma once
#include <ATen/core/Tensor.h>

namespace localist {

struct FusedAttentionInput {
  at::Tensor qkv;  // (B,T,3*H*d_h): the projection's output, q|k|v by head
  int64_t heads = 0, head_dim = 0;
  double scale = 1;         // on q.k (1/sqrt(d_h))
  at::Tensor key_bias;      // (B,T,H) added to every score of key j in head h, or undefined
  at::Tensor gate;          // (B,T,H) M4's g_ik scaling query i's output of head h, or undefined
  at::Tensor rule_targets;  // (B,T,T) bool: +rho on these scores, or undefined
  double rho = 0;
  // Ω (M5): wanted when hard is defined. hard (B,T) int64 key blocks in [0, blocks);
  // head_block (H) int64.
  at::Tensor hard, head_block;
  int64_t blocks = 0;
};

struct FusedAttentionOutput {
  at::Tensor heads;  // (B,T,H,d_h) α V per head, times the gate when given
  at::Tensor omega;  // scalar Ω averaged over (sequence, head, query), or undefined
};

// Whether the fused kernel serves this input (CPU, float or double); otherwise use the
// unfused path.
bool fused_attention_supported(const at::Tensor& qkv);

// Differentiable in qkv, key_bias and gate (and through Ω).
FusedAttentionOutput fused_attention(const FusedAttentionInput& in);

// The kernel build in use ("AVX2" or "DEFAULT"), for benchmarks and `localist info`.
const char* fused_attention_capability();

}  // namespace localist
