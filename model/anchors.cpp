// SPDX-License-Identifier: Apache-2.0
// anchors.cpp: see anchors.h.
#include "model/anchors.h"

#include <cmath>

#include "core/error.h"
#include "core/mix64.h"

namespace localist {

double welch_bound(int64_t k, int64_t d) {
  if (k <= d || k < 2) return 0.0;
  return std::sqrt(double(k - d) / (double(d) * double(k - 1)));
}

double anchors_coherence(const std::vector<double>& v, int64_t k, int64_t d) {
  double mu = 0;
  for (int64_t a = 0; a < k; ++a) {
    for (int64_t b = a + 1; b < k; ++b) {
      double dot = 0;
      for (int64_t i = 0; i < d; ++i) dot += v[a * d + i] * v[b * d + i];
      mu = std::max(mu, std::fabs(dot));
    }
  }
  return mu;
}

AnchorCode anchors_make(int64_t k_max, int64_t dim, uint64_t seed) {
  const int64_t need = static_cast<int64_t>(std::ceil(std::log2(static_cast<double>(std::max<int64_t>(k_max, 1)))));
  if (k_max < 1 || dim < 1 || dim < need) {
    throw ConfigError("model.anchor_dim: " + std::to_string(dim) + " cannot name " + std::to_string(k_max) +
                      " blocks; need at least ceil(log2 k_max) = " + std::to_string(need));
  }
  AnchorCode c;
  c.k_max = k_max;
  c.dim = dim;
  c.values.assign(k_max * dim, 0.0);
  if (dim >= k_max) {
    int64_t p = 1;
    while (p * 2 <= dim) p *= 2;  // largest power of two <= dim
    if (p >= k_max) {
      // Row r of the Sylvester-Hadamard matrix H_p: H[r][i] = (-1)^popcount(r & i).
      c.kind = "hadamard";
      for (int64_t r = 0; r < k_max; ++r) {
        for (int64_t i = 0; i < p; ++i) {
          c.values[r * dim + i] = (__builtin_popcountll(uint64_t(r & i)) % 2 ? -1.0 : 1.0) / std::sqrt(double(p));
        }
      }
    } else {
      c.kind = "identity";
      for (int64_t r = 0; r < k_max; ++r) c.values[r * dim + r] = 1.0;
    }
  } else {
    // Greedy: each new anchor is the best of 256 seeded random sign vectors, the one
    // with the smallest largest |dot| with the anchors chosen so far.
    c.kind = "greedy";
    const double s = 1.0 / std::sqrt(double(dim));
    uint64_t state = mix64(seed ^ 0x416E63686F727321ull);
    std::vector<double> cand(dim);
    for (int64_t r = 0; r < k_max; ++r) {
      double best_mu = 1e9;
      std::vector<double> best(dim);
      for (int trial = 0; trial < 256; ++trial) {
        for (int64_t i = 0; i < dim; ++i) {
          state = mix64(state);
          cand[i] = (state >> 63) ? s : -s;
        }
        double mu = 0;
        for (int64_t q = 0; q < r; ++q) {
          double dot = 0;
          for (int64_t i = 0; i < dim; ++i) dot += cand[i] * c.values[q * dim + i];
          mu = std::max(mu, std::fabs(dot));
        }
        if (mu < best_mu - 1e-12) best_mu = mu, best = cand;
      }
      for (int64_t i = 0; i < dim; ++i) c.values[r * dim + i] = best[i];
    }
  }
  c.coherence = anchors_coherence(c.values, k_max, dim);
  c.welch_bound = welch_bound(k_max, dim);
  return c;
}

}  // namespace localist
