// SPDX-License-Identifier: Apache-2.0
// fused_ffn_kernel.cpp: see fused_ffn_kernel.h. gelu(x) = x Φ(x) with Φ(x) =
// (1 + erf(x/√2)) / 2, gelu'(x) = Φ(x) + x φ(x), φ the standard normal density: the
// forms ATen's exact GELU uses, so both paths agree to rounding.
#include "model/fused_ffn_kernel.h"

#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>

#ifndef CPU_CAPABILITY
#error "fused_ffn_kernel.cpp is compiled with CPU_CAPABILITY set (model/CMakeLists.txt)"
#endif

namespace localist::fused::CPU_CAPABILITY {
namespace {

template <typename S>
using Vec = at::vec::Vectorized<S>;

constexpr double kSqrtHalf = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

}  // namespace

template <typename S>
void bias_gelu_forward(S* pre, S* out, const S* bias, int64_t r0, int64_t r1, int64_t cols) {
  constexpr int64_t w = Vec<S>::size();
  const Vec<S> half(S(0.5)), one(S(1)), sqrt_half(static_cast<S>(kSqrtHalf));
  for (int64_t r = r0; r < r1; ++r) {
    S* x = pre + r * cols;
    S* y = out + r * cols;
    int64_t c = 0;
    for (; c + w <= cols; c += w) {
      const auto v = Vec<S>::loadu(x + c) + Vec<S>::loadu(bias + c);
      v.store(x + c);
      (v * half * (one + (v * sqrt_half).erf())).store(y + c);
    }
    for (; c < cols; ++c) {
      const S v = (x[c] += bias[c]);
      y[c] = v * S(0.5) * (S(1) + std::erf(v * static_cast<S>(kSqrtHalf)));
    }
  }
}

template <typename S>
void bias_gelu_backward(const S* dout, const S* pre, S* dpre, S* dbias, int64_t r0, int64_t r1, int64_t cols) {
  constexpr int64_t w = Vec<S>::size();
  const Vec<S> half(S(0.5)), one(S(1)), sqrt_half(static_cast<S>(kSqrtHalf)), minus_half(S(-0.5)),
      inv_sqrt_2pi(static_cast<S>(kInvSqrt2Pi));
  std::fill(dbias, dbias + cols, S(0));
  for (int64_t r = r0; r < r1; ++r) {
    const S* x = pre + r * cols;
    const S* g = dout + r * cols;
    S* d = dpre + r * cols;
    int64_t c = 0;
    for (; c + w <= cols; c += w) {
      const auto v = Vec<S>::loadu(x + c);
      const auto cdf = half * (one + (v * sqrt_half).erf());
      const auto pdf = (minus_half * v * v).exp() * inv_sqrt_2pi;
      const auto dv = Vec<S>::loadu(g + c) * (cdf + v * pdf);
      dv.store(d + c);
      (Vec<S>::loadu(dbias + c) + dv).store(dbias + c);
    }
    for (; c < cols; ++c) {
      const S v = x[c];
      const S cdf = S(0.5) * (S(1) + std::erf(v * static_cast<S>(kSqrtHalf)));
      const S pdf = std::exp(S(-0.5) * v * v) * static_cast<S>(kInvSqrt2Pi);
      d[c] = g[c] * (cdf + v * pdf);
      dbias[c] += d[c];
    }
  }
}

template void bias_gelu_forward<float>(float*, float*, const float*, int64_t, int64_t, int64_t);
template void bias_gelu_forward<double>(double*, double*, const double*, int64_t, int64_t, int64_t);
template void bias_gelu_backward<float>(const float*, const float*, float*, float*, int64_t, int64_t, int64_t);
template void bias_gelu_backward<double>(const double*, const double*, double*, double*, int64_t, int64_t, int64_t);

}  // namespace localist::fused::CPU_CAPABILITY
