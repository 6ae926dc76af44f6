// SPDX-License-Identifier: Apache-2.0
// fused_vec_ops.h: the small vector helpers the fused kernels share (lane sums, dot,
// scale, axpy) over ATen's Vectorized types. Included only by the per-capability kernel
// sources (model/CMakeLists.txt), in whose namespace it puts them.
#pragma once
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>

#ifndef CPU_CAPABILITY
#error "fused_vec_ops.h is for sources compiled with CPU_CAPABILITY set (model/CMakeLists.txt)"
#endif

namespace localist::fused::CPU_CAPABILITY {

template <typename S>
using Vec = at::vec::Vectorized<S>;

template <typename S>
S horizontal_sum(const Vec<S>& v) {
  S lanes[Vec<S>::size()];
  v.store(lanes);
  S s = 0;
  for (int l = 0; l < Vec<S>::size(); ++l) s += lanes[l];
  return s;
}

template <typename S>
S horizontal_max(const Vec<S>& v) {
  S lanes[Vec<S>::size()];
  v.store(lanes);
  S m = lanes[0];
  for (int l = 1; l < Vec<S>::size(); ++l) m = std::max(m, lanes[l]);
  return m;
}

template <typename S>
S dot(const S* a, const S* b, int64_t len) {
  constexpr int64_t w = Vec<S>::size();
  Vec<S> acc(S(0));
  int64_t j = 0;
  for (; j + w <= len; j += w) acc = acc + Vec<S>::loadu(a + j) * Vec<S>::loadu(b + j);
  S s = horizontal_sum(acc);
  for (; j < len; ++j) s += a[j] * b[j];
  return s;
}

// x[0, len) *= by
template <typename S>
void scale_row(S* x, int64_t len, S by) {
  constexpr int64_t w = Vec<S>::size();
  const Vec<S> vb(by);
  int64_t j = 0;
  for (; j + w <= len; j += w) (Vec<S>::loadu(x + j) * vb).store(x + j);
  for (; j < len; ++j) x[j] *= by;
}

// y[0, len) += alpha x[0, len)
template <typename S>
void axpy(S* y, S alpha, const S* x, int64_t len) {
  constexpr int64_t w = Vec<S>::size();
  const Vec<S> va(alpha);
  int64_t j = 0;
  for (; j + w <= len; j += w) (Vec<S>::loadu(y + j) + va * Vec<S>::loadu(x + j)).store(y + j);
  for (; j < len; ++j) y[j] += alpha * x[j];
}

}  // namespace localist::fused::CPU_CAPABILITY
