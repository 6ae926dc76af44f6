// SPDX-License-Identifier: Apache-2.0
// candidates.cpp: see candidates.h.
#include "recruitment/candidates.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "core/mix64.h"

namespace localist {
namespace {

double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + mid, v.end());
  const double hi = v[mid];
  if (v.size() % 2 == 1) return hi;
  return 0.5 * (hi + *std::max_element(v.begin(), v.begin() + mid));
}

double sq_dist(const float* a, const float* b, int64_t dim) {
  double s = 0;
  for (int64_t j = 0; j < dim; ++j) s += (double(a[j]) - b[j]) * (double(a[j]) - b[j]);
  return s;
}

}  // namespace

double RunningMedian::add_round(const std::vector<float>& bits) {
  medians_.push_back(median_of(std::vector<double>(bits.begin(), bits.end())));
  while (static_cast<int64_t>(medians_.size()) > std::max<int64_t>(rounds_, 1)) medians_.pop_front();
  return value();
}

double RunningMedian::value() const { return median_of(std::vector<double>(medians_.begin(), medians_.end())); }

std::vector<int32_t> kmeans(const std::vector<float>& points, int64_t dim, int64_t k, int64_t iters, uint64_t seed) {
  const int64_t n = dim > 0 ? static_cast<int64_t>(points.size()) / dim : 0;
  std::vector<int32_t> assign(n, 0);
  k = std::min(k, n);
  if (k <= 1) return assign;
  // k-means++: the first centre by the seed, each next one with probability ∝ D².
  std::vector<float> centres(points.begin() + (mix64(seed) % n) * dim, points.begin() + (mix64(seed) % n + 1) * dim);
  std::vector<double> d2(n, std::numeric_limits<double>::infinity());
  for (int64_t c = 1; c < k; ++c) {
    double total = 0;
    const float* last = &centres[(c - 1) * dim];
    for (int64_t i = 0; i < n; ++i) total += (d2[i] = std::min(d2[i], sq_dist(&points[i * dim], last, dim)));
    int64_t pick = n - 1;
    if (total > 0) {
      double r = mix64_unit(mix64(seed + 0x9E37 * c)) * total;
      for (int64_t i = 0; i < n; ++i) {
        if ((r -= d2[i]) < 0) {
          pick = i;
          break;
        }
      }
    }
    centres.insert(centres.end(), points.begin() + pick * dim, points.begin() + (pick + 1) * dim);
  }
  for (int64_t it = 0; it < iters; ++it) {
    bool changed = it == 0;
    for (int64_t i = 0; i < n; ++i) {
      int32_t best = 0;
      double best_d = std::numeric_limits<double>::infinity();
      for (int64_t c = 0; c < k; ++c) {
        const double d = sq_dist(&points[i * dim], &centres[c * dim], dim);
        if (d < best_d) best_d = d, best = static_cast<int32_t>(c);
      }
      if (assign[i] != best) changed = true;
      assign[i] = best;
    }
    if (!changed) break;
    std::vector<double> sum(k * dim, 0.0);
    std::vector<int64_t> count(k, 0);
    for (int64_t i = 0; i < n; ++i) {
      ++count[assign[i]];
      for (int64_t j = 0; j < dim; ++j) sum[assign[i] * dim + j] += points[i * dim + j];
    }
    for (int64_t c = 0; c < k; ++c) {
      if (count[c] == 0) continue;  // an empty cluster keeps its centre
      for (int64_t j = 0; j < dim; ++j) centres[c * dim + j] = static_cast<float>(sum[c * dim + j] / count[c]);
    }
  }
  return assign;
}

std::vector<Candidate> candidates_find(const std::vector<ProbeToken>& tokens, const std::vector<float>& router,
                                       int64_t dim, double median, const std::vector<std::string>& domain_names,
                                       const CandidateOptions& o) {
  std::vector<int64_t> unexplained;
  bool tagged = false;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto& t = tokens[i];
    if (t.max_pi < o.phi || t.bits > median + o.kappa) unexplained.push_back(static_cast<int64_t>(i));
    tagged = tagged || t.domain >= 0;
  }
  std::map<int32_t, std::vector<int64_t>> groups;
  if (tagged) {
    for (int64_t i : unexplained) groups[tokens[i].domain].push_back(i);
  } else if (!unexplained.empty()) {
    std::vector<float> pts;
    pts.reserve(unexplained.size() * dim);
    for (int64_t i : unexplained) pts.insert(pts.end(), router.begin() + i * dim, router.begin() + (i + 1) * dim);
    const auto cluster = kmeans(pts, dim, o.kmeans_k, o.kmeans_iters, o.seed);
    for (size_t j = 0; j < unexplained.size(); ++j) groups[cluster[j]].push_back(unexplained[j]);
  }
  std::vector<Candidate> out;
  for (auto& [key, members] : groups) {
    if (static_cast<int64_t>(members.size()) < o.n_min) continue;
    Candidate c;
    c.domain = tagged ? key : -1;
    c.label = !tagged                                                       ? "cluster " + std::to_string(key)
              : key >= 0 && key < static_cast<int32_t>(domain_names.size()) ? "domain " + domain_names[key]
                                                                            : "untagged";
    c.tokens = members;
    std::vector<double> sum(dim, 0.0);
    for (int64_t i : members) {
      c.excess_bits += tokens[i].bits - median;
      for (int64_t j = 0; j < dim; ++j) sum[j] += router[i * dim + j];
    }
    for (int64_t j = 0; j < dim; ++j) c.centroid.push_back(static_cast<float>(sum[j] / members.size()));
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
    return a.excess_bits != b.excess_bits ? a.excess_bits > b.excess_bits : a.label < b.label;
  });
  return out;
}

}  // namespace localist
