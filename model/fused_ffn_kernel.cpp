// SPDX-License-Identifier: Apache-2.0
// fused_ffn_kernel.cpp: see fused_ffn_kernel.h. gelu(x) = x Φ(x) with Φ(x) =
// (1 + erf(x/√2)) / 2, gelu'(x) = Φ(x) + x φ(x), φ the standard normal density: the
// forms ATen's exact GELU uses. In float32, Φ comes from Abramowitz & Stegun 7.1.26 (|error|
// <= 7.5e-8, one exp, which also gives φ) instead of SLEEF's erf: the erf was an eighth of a
// training step. float64 keeps SLEEF's erf (the 1e-10 exactness tests).
#include "model/fused_ffn_kernel.h"

#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#ifndef CPU_CAPABILITY
#error "fused_ffn_kernel.cpp is compiled with CPU_CAPABILITY set (model/CMakeLists.txt)"
#endif

namespace localist::fused::CPU_CAPABILITY {
namespace {

template <typename S>
using Vec = at::vec::Vectorized<S>;

constexpr double kSqrtHalf = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// Φ(x) and exp(-x²/2) for one vector. With u = |x|/√2: 1 − erf(u) = poly(t) exp(−u²),
// t = 1 / (1 + p u), so Φ(−|x|) = poly(t) exp(−u²) / 2 comes without cancellation.
template <typename S>
void normal_cdf_and_gauss(const Vec<S>& x, Vec<S>* cdf, Vec<S>* gauss) {
  const Vec<S> half(S(0.5)), one(S(1)), sqrt_half(static_cast<S>(kSqrtHalf));
  if constexpr (std::is_same_v<S, float>) {
    const Vec<S> p(0.3275911f), a1(0.254829592f), a2(-0.284496736f), a3(1.421413741f), a4(-1.453152027f),
        a5(1.061405429f);
    const auto u = x.abs() * sqrt_half;
    const auto t = (at::vec::fmadd(p, u, one)).reciprocal();
    auto poly = at::vec::fmadd(a5, t, a4);
    poly = at::vec::fmadd(poly, t, a3);
    poly = at::vec::fmadd(poly, t, a2);
    poly = at::vec::fmadd(poly, t, a1);
    poly = poly * t;
    *gauss = (Vec<S>(S(0)) - u * u).exp();
    const auto lower = half * poly * *gauss;  // Φ(−|x|)
    *cdf = Vec<S>::blendv(one - lower, lower, x < Vec<S>(S(0)));
  } else {
    *cdf = half * (one + (x * sqrt_half).erf());
    *gauss = (Vec<S>(S(-0.5)) * x * x).exp();
  }
}

}  // namespace

template <typename S>
void bias_gelu_forward(S* pre, S* out, const S* bias, int64_t r0, int64_t r1, int64_t cols) {
  constexpr int64_t w = Vec<S>::size();
  for (int64_t r = r0; r < r1; ++r) {
    S* x = pre + r * cols;
    S* y = out + r * cols;
    int64_t c = 0;
    for (; c + w <= cols; c += w) {
      const auto v = Vec<S>::loadu(x + c) + Vec<S>::loadu(bias + c);
      v.store(x + c);
      Vec<S> cdf, gauss;
      normal_cdf_and_gauss(v, &cdf, &gauss);
      (v * cdf).store(y + c);
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
  const Vec<S> inv_sqrt_2pi(static_cast<S>(kInvSqrt2Pi));
  std::fill(dbias, dbias + cols, S(0));
  for (int64_t r = r0; r < r1; ++r) {
    const S* x = pre + r * cols;
    const S* g = dout + r * cols;
    S* d = dpre + r * cols;
    int64_t c = 0;
    for (; c + w <= cols; c += w) {
      const auto v = Vec<S>::loadu(x + c);
      Vec<S> cdf, gauss;
      normal_cdf_and_gauss(v, &cdf, &gauss);
      const auto dv = Vec<S>::loadu(g + c) * (cdf + v * gauss * inv_sqrt_2pi);
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
