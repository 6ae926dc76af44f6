// SPDX-License-Identifier: Apache-2.0
// fused_routing_kernel.h: M2's routing as one pass over each token's input row
// (model/fused_routing.h is the tensor face): r = W_r x, π = softmax(A r / τ) forward;
// backward the row's dx and the block's partial dW_r and dA, on row blocks of kRouteRows
// so the partial sums do not depend on the thread count. For small router widths and
// block counts (the skinny products that OpenBLAS packs at the cost of a full pass each).
// Compiled once per CPU capability like fused_attention_kernel.h.
#pragma once
#include <cstdint>

namespace localist::fused {

constexpr int64_t kRouteRows = 64;  // rows per block (one partial dW_r and dA each)

// x (rows x d) the normalised inputs, w (a x d) the router, anchors (K x a) the active
// blocks' anchors; r (rows x a) and pi (rows x K) are written forward and read backward.
template <typename S>
struct RouteProblem {
  int64_t d = 0, a = 0, K = 0;
  const S *x = nullptr, *w = nullptr, *anchors = nullptr;
  S inv_tau = 1;
  S *r = nullptr, *pi = nullptr;
  // Backward only.
  const S* dpi = nullptr;  // (rows x K)
  S* dx = nullptr;         // (rows x d), written
};

#define LOCALIST_ROUTE_KERNEL_DECLARE(NS)                                                          \
  namespace NS {                                                                                   \
  /* Rows [r0, r1): r and pi. */                                                                   \
  template <typename S>                                                                            \
  void route_forward(const RouteProblem<S>& p, int64_t r0, int64_t r1);                            \
  /* Rows [r0, r1): dx; dw (a x d) and da (K x a) = this block's partial sums (overwritten). */    \
  template <typename S>                                                                            \
  void route_backward(const RouteProblem<S>& p, int64_t r0, int64_t r1, S* dw, S* da, S* scratch); \
  }

// Scratch elements route_backward needs.
inline int64_t route_scratch_size(int64_t a, int64_t K) { return a + K; }

LOCALIST_ROUTE_KERNEL_DECLARE(DEFAULT)
LOCALIST_ROUTE_KERNEL_DECLARE(AVX2)

}  // namespace localist::fused
