// SPDX-License-Identifier: Apache-2.0
// fused_routing_kernel.cpp: see fused_routing_kernel.h. Per row: a vector dot products of
// length d forward, a vector updates each of dx and dW_r backward; the K-wide softmax and
// its backward are scalar (K is the number of active blocks).
#include "model/fused_routing_kernel.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/fused_vec_ops.h"  // requires CPU_CAPABILITY (model/CMakeLists.txt)

namespace localist::fused::CPU_CAPABILITY {

template <typename S>
void route_forward(const RouteProblem<S>& p, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; ++i) {
    const S* x = p.x + i * p.d;
    S* r = p.r + i * p.a;
    S* pi = p.pi + i * p.K;
    for (int64_t m = 0; m < p.a; ++m) r[m] = dot(p.w + m * p.d, x, p.d);
    S top = -std::numeric_limits<S>::infinity();
    for (int64_t k = 0; k < p.K; ++k) {
      pi[k] = dot(p.anchors + k * p.a, r, p.a) * p.inv_tau;
      top = std::max(top, pi[k]);
    }
    S sum = 0;
    for (int64_t k = 0; k < p.K; ++k) sum += (pi[k] = std::exp(pi[k] - top));
    const S inv = S(1) / sum;
    for (int64_t k = 0; k < p.K; ++k) pi[k] *= inv;
  }
}

template <typename S>
void route_backward(const RouteProblem<S>& p, int64_t r0, int64_t r1, S* dw, S* da, S* scratch) {
  S* dl = scratch;        // K: d loss / d logit
  S* dr = scratch + p.K;  // a: d loss / d r
  std::fill(dw, dw + p.a * p.d, S(0));
  std::fill(da, da + p.K * p.a, S(0));
  for (int64_t i = r0; i < r1; ++i) {
    const S* x = p.x + i * p.d;
    const S* r = p.r + i * p.a;
    const S* pi = p.pi + i * p.K;
    const S* g = p.dpi + i * p.K;
    const S s = dot(pi, g, p.K);
    for (int64_t k = 0; k < p.K; ++k) dl[k] = pi[k] * (g[k] - s) * p.inv_tau;
    std::fill(dr, dr + p.a, S(0));
    for (int64_t k = 0; k < p.K; ++k) {
      axpy(dr, dl[k], p.anchors + k * p.a, p.a);
      axpy(da + k * p.a, dl[k], r, p.a);
    }
    S* dx = p.dx + i * p.d;
    std::fill(dx, dx + p.d, S(0));
    for (int64_t m = 0; m < p.a; ++m) {
      axpy(dx, dr[m], p.w + m * p.d, p.d);
      axpy(dw + m * p.d, dr[m], x, p.d);
    }
  }
}

template void route_forward<float>(const RouteProblem<float>&, int64_t, int64_t);
template void route_forward<double>(const RouteProblem<double>&, int64_t, int64_t);
template void route_backward<float>(const RouteProblem<float>&, int64_t, int64_t, float*, float*, float*);
template void route_backward<double>(const RouteProblem<double>&, int64_t, int64_t, double*, double*, double*);

}  // namespace localist::fused::CPU_CAPABILITY
