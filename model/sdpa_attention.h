// SPDX-License-Identifier: Apache-2.0
// sdpa_attention.h: M3's block attention through at::scaled_dot_product_attention (flash,
// cuDNN or memory-efficient kernels on CUDA; flash or math on CPU), so nothing of size
// (B,H,T,T) is kept and memory stays linear in the context. The key bias rides as one
// extra column ([q·s, 1]·[k, β]), heads zero-padded to a multiple of 8; point rules become
// an additive mask (then (B,1,T,T) is formed). Ω comes from model/omega_tiles.h.
// Limits: no traces (α is never formed whole; the explicit path serves them).
#pragma once
#include "model/attention_kernel.h"

namespace localist {

// Differentiable in qkv, key_bias and gate (and through Ω). Same results as the explicit
// path of block_attention.cpp up to rounding (tests/model/test_sdpa_attention.cpp).
AttentionKernelOutput sdpa_attention(const AttentionKernelInput& in);

}  // namespace localist
