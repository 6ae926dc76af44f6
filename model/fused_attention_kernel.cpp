// SPDX-License-Identifier: Apache-2.0
// fused_attention_kernel.cpp: see fused_attention_kernel.h. Built once per capability
// with CPU_CAPABILITY set (ATen's vector types switch on it). Per tile: one product for
// the scores against keys [0, i1) only (the causal half), one pass per query row for
// bias, softmax and Ω's group sums, one product for α V; backward recomputes the tile.
#include "model/fused_attention_kernel.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "model/blas_gemm.h"
#include "model/fused_vec_ops.h"

#ifndef CPU_CAPABILITY
#error "fused_attention_kernel.cpp is compiled with CPU_CAPABILITY set (model/CMakeLists.txt)"
#endif

namespace localist::fused::CPU_CAPABILITY {
namespace {

// z[0, len) += bias[0, len) (the key biases of this head, gathered) and rho on targets.
template <typename S>
void add_biases(S* z, int64_t len, const S* bias, const bool* target_row, S rho) {
  constexpr int64_t w = Vec<S>::size();
  if (bias) {
    int64_t j = 0;
    for (; j + w <= len; j += w) (Vec<S>::loadu(z + j) + Vec<S>::loadu(bias + j)).store(z + j);
    for (; j < len; ++j) z[j] += bias[j];
  }
  if (target_row) {
    for (int64_t j = 0; j < len; ++j) z[j] += target_row[j] ? rho : S(0);
  }
}

// In place: z[0, len) -> softmax; returns log of the normaliser (the row's log-sum-exp).
template <typename S>
S softmax_row(S* z, int64_t len) {
  constexpr int64_t w = Vec<S>::size();
  S m = -std::numeric_limits<S>::infinity();
  int64_t j = 0;
  if (len >= w) {
    Vec<S> vm = Vec<S>::loadu(z);
    for (j = w; j + w <= len; j += w) vm = at::vec::maximum(vm, Vec<S>::loadu(z + j));
    m = horizontal_max(vm);
  }
  for (; j < len; ++j) m = std::max(m, z[j]);
  const Vec<S> vm(m);
  Vec<S> vs(S(0));
  for (j = 0; j + w <= len; j += w) {
    const auto e = (Vec<S>::loadu(z + j) - vm).exp();
    e.store(z + j);
    vs = vs + e;
  }
  S sum = horizontal_sum(vs);
  for (; j < len; ++j) sum += (z[j] = std::exp(z[j] - m));
  const S inv = S(1) / sum;
  const Vec<S> vinv(inv);
  for (j = 0; j + w <= len; j += w) (Vec<S>::loadu(z + j) * vinv).store(z + j);
  for (; j < len; ++j) z[j] *= inv;
  return m + std::log(sum);
}

// In place: z[0, len) -> exp(z - lse) (the softmax recomputed from its saved normaliser).
template <typename S>
void exp_row(S* z, int64_t len, S lse) {
  constexpr int64_t w = Vec<S>::size();
  const Vec<S> vl(lse);
  int64_t j = 0;
  for (; j + w <= len; j += w) (Vec<S>::loadu(z + j) - vl).exp().store(z + j);
  for (; j < len; ++j) z[j] = std::exp(z[j] - lse);
}

// Groups up to this many are summed in vector lanes (one compare per group and lane, the
// sums in registers); more fall back to a scalar scatter.
constexpr int64_t kMaxVecGroups = 16;

// The groups Ω needs for a query whose head is of block `own`: k' != own with |G_k'| > 0.
int64_t live_groups(const int32_t* counts, int64_t K, int64_t own, int64_t* live) {
  int64_t n = 0;
  for (int64_t k = 0; k < K; ++k) {
    if (k != own && counts[k] > 0) live[n++] = k;
  }
  return n;
}

// Ω's group sums for one query row: g[k'] = Σ_{j < len, b(j) = k'} α_j² for the live groups
// (others are left 0 or partial: nothing reads them). hard_value: the keys' blocks as S.
template <typename S>
void group_square_sums(const S* alpha, const int64_t* hard, const S* hard_value, int64_t len, int64_t K,
                       const int64_t* live, int64_t n_live, double* g) {
  std::fill(g, g + K, 0.0);
  int64_t j = 0;
  if (K <= kMaxVecGroups) {
    constexpr int64_t w = Vec<S>::size();
    const Vec<S> zero(S(0));
    Vec<S> acc[kMaxVecGroups];
    for (int64_t l = 0; l < n_live; ++l) acc[l] = zero;
    for (; j + w <= len; j += w) {
      const auto a = Vec<S>::loadu(alpha + j);
      const auto a2 = a * a;
      const auto hv = Vec<S>::loadu(hard_value + j);
      for (int64_t l = 0; l < n_live; ++l) {
        acc[l] = acc[l] + Vec<S>::blendv(zero, a2, hv == Vec<S>(static_cast<S>(live[l])));
      }
    }
    for (int64_t l = 0; l < n_live; ++l) g[live[l]] = static_cast<double>(horizontal_sum(acc[l]));
  }
  for (; j < len; ++j) g[hard[j]] += static_cast<double>(alpha[j]) * alpha[j];
}

// d[j] += coef[b(j)] α_j (Ω's gradient into dα; coef is 0 off the live groups).
template <typename S>
void add_group_scaled(S* d, const S* alpha, const int64_t* hard, const S* hard_value, int64_t len, int64_t K,
                      const double* coef, const int64_t* live, int64_t n_live) {
  int64_t j = 0;
  if (K <= kMaxVecGroups) {
    constexpr int64_t w = Vec<S>::size();
    const Vec<S> zero(S(0));
    for (; j + w <= len; j += w) {
      const auto hv = Vec<S>::loadu(hard_value + j);
      Vec<S> c = zero;
      for (int64_t l = 0; l < n_live; ++l) {
        c = Vec<S>::blendv(c, Vec<S>(static_cast<S>(coef[live[l]])), hv == Vec<S>(static_cast<S>(live[l])));
      }
      (Vec<S>::loadu(d + j) + c * Vec<S>::loadu(alpha + j)).store(d + j);
    }
  }
  for (; j < len; ++j) d[j] += static_cast<S>(coef[hard[j]]) * alpha[j];
}

// The keys' blocks of sequence b as S, for the vector compares.
template <typename S>
void hard_values(const int64_t* hard, int64_t len, S* out) {
  for (int64_t j = 0; j < len; ++j) out[j] = static_cast<S>(hard[j]);
}

// Ω(h, i) = Σ_{k' != own, |G| > 0} sqrt|G_k'(i)| · sqrt(max(g_k', 1e-30)), as penalty.cpp;
// coef[k'] = sqrt|G_k'(i)| / sqrt(g_k') where g_k' >= 1e-30 (its gradient's factor), else 0.
template <typename S>
double omega_of_row(const double* g, const int32_t* counts, int64_t K, int64_t own, S* coef) {
  double v = 0;
  for (int64_t k = 0; k < K; ++k) {
    coef[k] = S(0);
    if (k == own || counts[k] <= 0) continue;
    const double size = std::sqrt(static_cast<double>(counts[k]));
    v += size * std::sqrt(std::max(g[k], 1e-30));
    if (g[k] >= 1e-30) coef[k] = static_cast<S>(size / std::sqrt(g[k]));
  }
  return v;
}

// The tile's scores: s (nr x i1) = scale * q[i0, i1) . k[0, i1)^T, then each row's
// biases; rows past their query's position are left for the caller to clear.
template <typename S>
void tile_scores(const Problem<S>& p, int64_t b, int64_t h, int64_t i0, int64_t i1, S* s, S* bias) {
  const int64_t row = p.row(), hd = p.H * p.dh;
  const S* base = p.qkv + b * p.T * row;
  gemm_row_major(false, true, i1 - i0, i1, p.dh, p.scale, base + i0 * row + h * p.dh, row, base + hd + h * p.dh, row,
                 S(0), s, i1);
  if (p.beta) {
    for (int64_t j = 0; j < i1; ++j) bias[j] = p.beta[(b * p.T + j) * p.H + h];
  }
  for (int64_t i = i0; i < i1; ++i) {
    add_biases(s + (i - i0) * i1, i + 1, p.beta ? bias : nullptr, p.targets ? p.targets + (b * p.T + i) * p.T : nullptr,
               p.rho);
  }
}

}  // namespace

template <typename S>
double forward_tile(const Problem<S>& p, int64_t b, int64_t h, int64_t i0, int64_t i1, S* scratch) {
  const int64_t nr = i1 - i0, hd = p.H * p.dh, row = p.row();
  S* s = scratch;                  // nr x i1
  S* bias = s + kFusedTile * p.T;  // i1
  S* hv = bias + p.T;              // i1: the keys' blocks
  std::vector<double> g(static_cast<size_t>(p.K));
  std::vector<int64_t> live(static_cast<size_t>(p.K));
  tile_scores(p, b, h, i0, i1, s, bias);
  if (p.counts) hard_values(p.hard + b * p.T, i1, hv);
  double omega = 0;
  for (int64_t i = i0; i < i1; ++i) {
    S* z = s + (i - i0) * i1;
    const int64_t len = i + 1;
    p.lse[(b * p.H + h) * p.T + i] = softmax_row(z, len);
    std::fill(z + len, z + i1, S(0));
    if (p.counts) {
      const int32_t* counts = p.counts + (b * p.T + i) * p.K;
      const int64_t n = live_groups(counts, p.K, p.head_block[h], live.data());
      group_square_sums(z, p.hard + b * p.T, hv, len, p.K, live.data(), n, g.data());
      omega += omega_of_row(g.data(), counts, p.K, p.head_block[h], p.omega_coef + ((b * p.H + h) * p.T + i) * p.K);
    }
  }
  const S* v = p.qkv + b * p.T * row + 2 * hd + h * p.dh;
  S* out = p.out + (b * p.T + i0) * hd + h * p.dh;
  gemm_row_major(false, false, nr, p.dh, i1, S(1), s, i1, v, row, S(0), out, hd);
  if (p.gate) {
    for (int64_t i = i0; i < i1; ++i) scale_row(out + (i - i0) * hd, p.dh, p.gate[(b * p.T + i) * p.H + h]);
  }
  return omega;
}

template <typename S>
void backward_head(const Problem<S>& p, int64_t b, int64_t h, S* scratch) {
  const int64_t hd = p.H * p.dh, row = p.row(), T = p.T;
  S* s = scratch;                 // α tile, kFusedTile x T
  S* dz = s + kFusedTile * T;     // dα then dz tile
  S* bias = dz + kFusedTile * T;  // T
  S* dbeta = bias + T;            // T: Σ_i dz_ij for this head
  S* hv = dbeta + T;              // T: the keys' blocks
  S* dog = hv + T;                // kFusedTile x d_h: the tile's gate · dout
  std::vector<double> coef(static_cast<size_t>(p.K));
  std::vector<int64_t> live(static_cast<size_t>(p.K));
  std::fill(dbeta, dbeta + T, S(0));
  const S* base = p.qkv + b * T * row;
  const S *q = base + h * p.dh, *k = base + hd + h * p.dh, *v = base + 2 * hd + h * p.dh;
  S* dbase = p.dqkv + b * T * row;
  S *dq = dbase + h * p.dh, *dk = dbase + hd + h * p.dh, *dv = dbase + 2 * hd + h * p.dh;
  const S* dout = p.dout + b * T * hd + h * p.dh;
  const bool omega = p.counts && p.omega_grad != 0.0;
  if (omega) hard_values(p.hard + b * T, T, hv);
  constexpr int64_t w = Vec<S>::size();
  for (int64_t i0 = 0; i0 < T; i0 += kFusedTile) {
    const int64_t i1 = std::min(T, i0 + kFusedTile), nr = i1 - i0;
    tile_scores(p, b, h, i0, i1, s, bias);
    // dα (nr x i1) = dO . V^T
    gemm_row_major(false, true, nr, i1, p.dh, S(1), dout + i0 * hd, hd, v, row, S(0), dz, i1);
    for (int64_t i = i0; i < i1; ++i) {
      S* a = s + (i - i0) * i1;
      S* d = dz + (i - i0) * i1;
      const int64_t len = i + 1;
      exp_row(a, len, p.lse[(b * p.H + h) * T + i]);
      std::fill(a + len, a + i1, S(0));
      if (p.gate) {
        // y = g O: dg = dy . O = Σ_j α_j (dy . v_j), and dα = g (dy V^T).
        const int64_t gi = (b * T + i) * p.H + h;
        p.dgate[gi] = dot(a, d, len);
        scale_row(d, len, p.gate[gi]);
        const S* dy = dout + i * hd;
        S* o = dog + (i - i0) * p.dh;
        for (int64_t c = 0; c < p.dh; ++c) o[c] = p.gate[gi] * dy[c];
      }
      if (omega) {
        // dΩ/dα_ij = coef[b(j)] α_ij with coef = w / ||α_{i,G}|| on live groups (penalty.cpp),
        // the forward's factors times dL/dΩ.
        const int64_t* hard = p.hard + b * T;
        const int64_t n = live_groups(p.counts + (b * T + i) * p.K, p.K, p.head_block[h], live.data());
        const S* saved = p.omega_coef + ((b * p.H + h) * T + i) * p.K;
        for (int64_t kk = 0; kk < p.K; ++kk) coef[kk] = p.omega_grad * static_cast<double>(saved[kk]);
        add_group_scaled(d, a, hard, hv, len, p.K, coef.data(), live.data(), n);
      }
      // Softmax backward: dz = α (dα − Σ_j α_j dα_j).
      const S D = dot(a, d, len);
      const Vec<S> vD(D);
      int64_t j = 0;
      for (; j + w <= len; j += w) (Vec<S>::loadu(a + j) * (Vec<S>::loadu(d + j) - vD)).store(d + j);
      for (; j < len; ++j) d[j] = a[j] * (d[j] - D);
      std::fill(d + len, d + i1, S(0));
      if (p.dbeta) {
        for (j = 0; j + w <= len; j += w) (Vec<S>::loadu(dbeta + j) + Vec<S>::loadu(d + j)).store(dbeta + j);
        for (; j < len; ++j) dbeta[j] += d[j];
      }
    }
    // dq = scale dz K, dk += scale dz^T Q, dv += α^T dO (dO = g dy under a gate).
    gemm_row_major(false, false, nr, p.dh, i1, p.scale, dz, i1, k, row, S(0), dq + i0 * row, row);
    gemm_row_major(true, false, i1, p.dh, nr, p.scale, dz, i1, q + i0 * row, row, S(1), dk, row);
    if (p.gate) {
      gemm_row_major(true, false, i1, p.dh, nr, S(1), s, i1, dog, p.dh, S(1), dv, row);
    } else {
      gemm_row_major(true, false, i1, p.dh, nr, S(1), s, i1, dout + i0 * hd, hd, S(1), dv, row);
    }
  }
  if (p.dbeta) {
    for (int64_t j = 0; j < T; ++j) p.dbeta[(b * T + j) * p.H + h] = dbeta[j];
  }
}

template double forward_tile<float>(const Problem<float>&, int64_t, int64_t, int64_t, int64_t, float*);
template double forward_tile<double>(const Problem<double>&, int64_t, int64_t, int64_t, int64_t, double*);
template void backward_head<float>(const Problem<float>&, int64_t, int64_t, float*);
template void backward_head<double>(const Problem<double>&, int64_t, int64_t, double*);

}  // namespace localist::fused::CPU_CAPABILITY
