// SPDX-License-Identifier: Apache-2.0
// dial_schedule.h: the locality dial λ over training steps (DESIGN.md M9): constant
// (scalar or per-layer), linear, cosine, piecewise-linear points, named stages, and
// uniform sampling per step (a pure function of seed and step, so every rank and a
// resumed run draw the same λ). Every value is in [0, 1] (checked when parsed). A
// per-layer profile multiplies any of them: progressive locality (arXiv 2511.18375).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace localist {

struct DialPoint {
  int64_t step = 0;
  double value = 0;
};

struct DialStage {
  std::string name;
  int64_t until_step = -1;    // the stage holds while step < until_step; -1: to the end
  std::vector<double> value;  // scalar (size 1) or one per layer
};

// λ_ℓ(t) = λ(t) · profile(ℓ) for layer ℓ of L: uniform 1; linear ℓ/(L−1); power
// (ℓ/(L−1))^p, the paper's polynomial family (p = 5: quintic); values: one per layer in
// [0, 1]. A one-layer model's profile is 1.
struct DialProfile {
  std::string kind = "uniform";  // uniform | linear | power | values
  double power = 1.0;
  std::vector<double> values;
  std::vector<double> weights(int64_t n_layers) const;
  std::string describe() const;  // "uniform", "linear", "power 5", "values [0, 0.5, 1]"
};

struct DialSchedule {
  std::string kind = "constant";   // constant | linear | cosine | points | stages | uniform
  std::vector<double> value{0.0};  // constant: scalar (size 1) or one per layer
  double from = 0, to = 1;         // linear, cosine: value at start, at end
  int64_t start = 0, end = 1;      // linear, cosine: steps
  std::vector<DialPoint> points;   // points: sorted by step, held flat outside
  std::vector<DialStage> stages;   // stages: ordered by until_step
  double lo = 0, hi = 1;           // uniform
  DialProfile profile;             // train.dial_profile

  // λ for every layer at `step`: the schedule's value times the profile.
  std::vector<double> at(int64_t step, int64_t n_layers, uint64_t seed) const;
  // The stage name at `step` ("" unless kind == stages).
  std::string stage_at(int64_t step) const;

 private:
  std::vector<double> base_at(int64_t step, int64_t n_layers, uint64_t seed) const;  // before the profile
};

}  // namespace localist
