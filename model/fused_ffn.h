// SPDX-License-Identifier: Apache-2.0
// fused_ffn.h: the FFN's first half, gelu(x W^T + b), with the bias and the exact GELU
// in one vectorised pass after the product (model/fused_ffn_kernel.h), forward and
// backward (the bias gradient summed in the same pass). CPU float and double; other
// devices and dtypes use at::linear + at::gelu, the reference in tests.
#pragma once
#include <ATen/core/Tensor.h>

namespace localist {

bool fused_ffn_supported(const at::Tensor& x);

// x (..., in), w (out, in), b (out): returns (..., out). Differentiable in x, w and b.
at::Tensor linear_bias_gelu(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

}  // namespace localist
