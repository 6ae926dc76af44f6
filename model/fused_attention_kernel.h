// SPDX-License-Identifier: Apache-2.0
// fused_attention_kernel.h: the raw CPU kernel of the fused localist attention
// (model/fused_attention.h is its tensor and autograd face). One call handles one
// (sequence, head) and one tile of kFusedTile queries against every earlier key: the
// tile's scores live in a kFusedTile x T scratch, so memory is linear in the context.
// Compiled once per CPU capability (DEFAULT, and AVX2 where the compiler can), chosen at
// run time; the namespaces keep the two builds' ATen vector types apart.
#pragma once
#include <cstdint>

namespace localist::fused {

constexpr int64_t kFusedTile = 64;  // queries per tile

// One layer's attention problem. qkv is the projection's output (B,T,3,H,d_h)
// contiguous; scores are scale * q.k + beta_j (key bias, per head) + rho on rule
// targets, causal; each query's output is scaled by its gate (M4) when one is given. Ω's inputs (hard, head_block,
// counts) are null when Ω is not wanted.
template <typename S>
struct Problem {
  int64_t B = 0, T = 0, H = 0, dh = 0, K = 0;
  const S* qkv = nullptr;
  const S* beta = nullptr;        // (B,T,H) contiguous, or null
  const bool* targets = nullptr;  // (B,T,T) rule targets (+rho), or null
  S rho = 0, scale = 1;
  const int64_t* hard = nullptr;        // (B,T) each key's block in [0, K)
  const int64_t* head_block = nullptr;  // (H) each head's block
  const int32_t* counts = nullptr;      // (B,T,K) |G_k'(i)|: keys j <= i of block k'
  const S* gate = nullptr;              // (B,T,H) each query's gate on its head's output, or null
  S* out = nullptr;                     // (B,T,H,d_h) gate · α V
  S* lse = nullptr;                     // (B,H,T) log-sum-exp of each query's scores
  // (B,H,T,K) with Ω: sqrt|G_k'(i)| / ||α_{i,G_k'}|| on the live groups, 0 elsewhere;
  // written forward, read backward (dΩ/dα_ij = that of b(j) times α_ij).
  S* omega_coef = nullptr;
  // Backward only.
  const S* dout = nullptr;  // (B,T,H,d_h)
  S* dqkv = nullptr;        // (B,T,3,H,d_h), zero on entry
  S* dbeta = nullptr;       // (B,T,H), or null
  S* dgate = nullptr;       // (B,T,H), when gate
  double omega_grad = 0;    // dL/dΩ divided by the number of (b, h, i) averaged
  int64_t row() const { return 3 * H * dh; }
};

// Scratch elements one call needs (forward or backward).
inline int64_t scratch_size(int64_t T, int64_t dh) { return 2 * kFusedTile * T + 3 * T + kFusedTile * dh; }

#define LOCALIST_FUSED_KERNEL_DECLARE(NS)                                                             \
  namespace NS {                                                                                      \
  /* Queries [i0, i1) of head h of sequence b: out, lse; returns the tile's sum of Ω(h, i). */       \
  template <typename S>                                                                               \
  double forward_tile(const Problem<S>& p, int64_t b, int64_t h, int64_t i0, int64_t i1, S* scratch); \
  /* Every query of head h of sequence b: its rows of dqkv (q; k and v accumulated) and dbeta. */     \
  template <typename S>                                                                               \
  void backward_head(const Problem<S>& p, int64_t b, int64_t h, S* scratch);                          \
  }

LOCALIST_FUSED_KERNEL_DECLARE(DEFAULT)
LOCALIST_FUSED_KERNEL_DECLARE(AVX2)

}  // namespace localist::fused
