// SPDX-License-Identifier: Apache-2.0
// fused_routing.h: M2's routing distribution π_ik = softmax_k((W_r x_i) · a_k / τ) in one
// CPU pass per token (model/fused_routing_kernel.h), forward and backward, instead of two
// skinny products, a softmax and their backward through ATen. Used where the fused
// attention is (training and plain evaluation) and for routing-only traces (the
// trainer's block-share statistic), so a step's π is the same with or without them;
// full traces keep routing.cpp's ATen path, with the unfused attention.
#pragma once
#include <ATen/core/Tensor.h>

namespace localist {

// CPU float or double.
bool fused_routing_supported(const at::Tensor& xn);

struct FusedRouting {
  at::Tensor pi;      // (..., K), differentiable in xn, router_w and anchors
  at::Tensor router;  // (..., a) r_i, not differentiable (for traces)
};

// xn (..., d), router_w (a, d), anchors (K, a) the active blocks' anchors.
FusedRouting fused_routing(const at::Tensor& xn, const at::Tensor& router_w, const at::Tensor& anchors, double tau);

}  // namespace localist
