// SPDX-License-Identifier: Apache-2.0
// fused_attention.h: M3's attention with M5's Ω computed inside, fused on the CPU
// (model/fused_attention_kernel.h): key biases and rule targets added in the kernel,
// causal products only, no (B,H,T,T) tensor kept for backward (each tile is recomputed).
// Used for training and plain evaluation on CPU; traces (metrics, bounds, the report) use
// the unfused path in block_attention.cpp, the reference; CUDA uses model/sdpa_attention.h.
#pragma once
#include <ATen/core/Tensor.h>

#include "model/attention_kernel.h"

namespace localist {

// Whether the fused kernel serves this input (CPU, float or double, no CPU autocast); otherwise use the
// unfused path.
bool fused_attention_supported(const at::Tensor& qkv);

// Differentiable in qkv, key_bias and gate (and through Ω).
AttentionKernelOutput fused_attention(const AttentionKernelInput& in);

// The kernel build in use ("AVX2" or "DEFAULT"), for benchmarks and `localist info`.
const char* fused_attention_capability();

}  // namespace localist
