// SPDX-License-Identifier: Apache-2.0
// fused_ffn_kernel.h: the FFN's bias + GELU (exact, erf form) as one vectorised pass
// forward and one backward (model/fused_ffn.h is the tensor face), on row blocks of
// kFfnRows so the bias gradient's partial sums do not depend on the thread count.
// Compiled once per CPU capability like fused_attention_kernel.h.
#pragma once
#include <cstdint>

namespace localist::fused {

constexpr int64_t kFfnRows = 64;  // rows per block (one bias-gradient partial each)

#define LOCALIST_FFN_KERNEL_DECLARE(NS)                                                                          \
  namespace NS {                                                                                                 \
  /* Rows [r0, r1) of (rows x cols): pre += bias (in place), out = gelu(pre). */                                 \
  template <typename S>                                                                                          \
  void bias_gelu_forward(S* pre, S* out, const S* bias, int64_t r0, int64_t r1, int64_t cols);                   \
  /* Rows [r0, r1): dpre = dout * gelu'(pre); dbias (cols) = the rows' column sums of dpre. */                   \
  template <typename S>                                                                                          \
  void bias_gelu_backward(const S* dout, const S* pre, S* dpre, S* dbias, int64_t r0, int64_t r1, int64_t cols); \
  }

LOCALIST_FFN_KERNEL_DECLARE(DEFAULT)
LOCALIST_FFN_KERNEL_DECLARE(AVX2)

}  // namespace localist::fused
