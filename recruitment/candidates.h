// SPDX-License-Identifier: Apache-2.0
// candidates.h: from one probe round's per-token statistics (reduced over all ranks,
// so every rank holds the same numbers) to recruitment candidates (DESIGN.md §1 M10
// steps 2-3): tokens the model does not explain (max routing probability below φ, or
// bits above the running median by κ), grouped by domain tag when the data has tags,
// else by k-means on their router vectors; groups below n_min tokens are dropped.
// Deterministic: the same inputs give the same candidates on every rank.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace localist {

// One probed token.
struct ProbeToken {
  float bits = 0;       // -log2 p(token) under the current model
  float max_pi = 0;     // max_k π_ik (last layer)
  int32_t domain = -1;  // index of the source's domain tag; -1 when the data has none
  int64_t window = 0;   // probe window it came from (for selecting candidate data)
};

struct Candidate {
  std::string label;            // "domain drama" or "cluster 2"
  int32_t domain = -1;          // the tag when grouped by domain
  std::vector<int64_t> tokens;  // indices into the probe's tokens, ascending
  double excess_bits = 0;       // Σ (bits - running median) over its tokens: what it might save
  std::vector<float> centroid;  // mean router vector of its tokens (d_a)
};

// The median of per-token bits over the last `rounds` rounds (each round's median).
class RunningMedian {
 public:
  explicit RunningMedian(int64_t rounds) : rounds_(rounds) {}
  // Adds a round's bits and returns the running median including it.
  double add_round(const std::vector<float>& bits);
  double value() const;
  const std::deque<double>& history() const { return medians_; }
  void restore(const std::deque<double>& medians) { medians_ = medians; }

 private:
  int64_t rounds_;
  std::deque<double> medians_;
};

// Lloyd's k-means with deterministic k-means++ seeding (from `seed`) on n points of
// dimension dim (row-major). Returns the cluster of every point; k is capped at n.
std::vector<int32_t> kmeans(const std::vector<float>& points, int64_t dim, int64_t k, int64_t iters, uint64_t seed);

struct CandidateOptions {
  double phi = 0.5, kappa = 2.0;
  int64_t n_min = 256, kmeans_k = 4, kmeans_iters = 25;
  uint64_t seed = 0;
};

// Candidates, best first (largest excess bits; ties by label). `router` holds each
// token's router vector (tokens.size() x dim, row-major); `median` is the running median.
std::vector<Candidate> candidates_find(const std::vector<ProbeToken>& tokens, const std::vector<float>& router,
                                       int64_t dim, double median, const std::vector<std::string>& domain_names,
                                       const CandidateOptions& options);

}  // namespace localist
