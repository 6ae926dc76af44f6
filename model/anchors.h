// SPDX-License-Identifier: Apache-2.0
// anchors.h: M1 anchor codes a_0..a_{K_max-1}, unit vectors in R^{d_a} with low
// mutual coherence. d_a >= K_max: orthogonal rows (Sylvester-Hadamard when a power
// of two fits, else the identity), coherence 0. Otherwise a deterministic, seeded
// +-1/sqrt(d_a) code chosen greedily for low coherence. Frozen after construction.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace localist {

struct AnchorCode {
  int64_t k_max = 0;
  int64_t dim = 0;
  std::string kind;            // hadamard | identity | greedy
  std::vector<double> values;  // row-major k_max x dim, unit rows
  double coherence = 0;        // max |a_k . a_k'| over k != k'
  double welch_bound = 0;      // sqrt((K - d) / (d (K - 1))) when K > d, else 0
};

// Throws ConfigError when dim < ceil(log2 k_max) (naming one of k_max blocks needs that many bits).
AnchorCode anchors_make(int64_t k_max, int64_t dim, uint64_t seed);

double anchors_coherence(const std::vector<double>& values, int64_t k, int64_t dim);
double welch_bound(int64_t k, int64_t dim);

}  // namespace localist
