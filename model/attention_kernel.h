// SPDX-License-Identifier: Apache-2.0
// attention_kernel.h: what M3's attention kernels take and give (the fused CPU kernel of
// model/fused_attention.h and the SDPA path of model/sdpa_attention.h), and which of
// them, or the explicit reference path of block_attention.cpp, serves a forward.
// Limits: the choice is per call; LOCALIST_ATTENTION overrides it (docs/operations.md).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace localist {

struct AttentionKernelInput {
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

struct AttentionKernelOutput {
  at::Tensor heads;  // (B,T,H,d_h) α V per head, times the gate when given
  at::Tensor omega;  // scalar Ω averaged over (sequence, head, query), or undefined
};

enum class AttentionPath { kExplicit, kFused, kSdpa };

// The path for a forward: the explicit one for traces, with `fused` false (the reference
// path) or LOCALIST_UNFUSED=attention|all; else LOCALIST_ATTENTION=explicit|fused|sdpa
// when set; else SDPA for CUDA tensors, the fused kernel where it serves (CPU float or
// double), the explicit path otherwise. An unknown LOCALIST_ATTENTION is a user error.
AttentionPath attention_path(const at::Tensor& qkv, bool fused, bool trace);

const char* attention_path_name(AttentionPath path);

}  // namespace localist
