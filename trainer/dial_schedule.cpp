// SPDX-License-Identifier: Apache-2.0
// dial_schedule.cpp: see dial_schedule.h.
#include "trainer/dial_schedule.h"

#include <cmath>
#include <sstream>

#include "core/error.h"
#include "core/mix64.h"

namespace localist {
namespace {

std::vector<double> broadcast(const std::vector<double>& v, int64_t n_layers) {
  if (v.size() == 1) return std::vector<double>(n_layers, v[0]);
  if (static_cast<int64_t>(v.size()) != n_layers) {
    throw ConfigError("train.dial: per-layer dial has " + std::to_string(v.size()) + " values but the model has " +
                      std::to_string(n_layers) + " layers");
  }
  return v;
}

double ramp_fraction(int64_t step, int64_t start, int64_t end) {
  if (step <= start) return 0.0;
  if (step >= end) return 1.0;
  return static_cast<double>(step - start) / static_cast<double>(end - start);
}

}  // namespace

std::vector<double> DialProfile::weights(int64_t n_layers) const {
  std::vector<double> w(n_layers, 1.0);
  if (kind == "values") {
    if (static_cast<int64_t>(values.size()) != n_layers) {
      throw ConfigError("dial profile: " + std::to_string(values.size()) + " values but the model has " +
                        std::to_string(n_layers) + " layers");
    }
    return values;
  }
  if (n_layers < 2 || kind == "uniform") return w;
  for (int64_t l = 0; l < n_layers; ++l) {
    const double x = static_cast<double>(l) / static_cast<double>(n_layers - 1);
    w[l] = kind == "linear" ? x : std::pow(x, power);
  }
  return w;
}

std::string DialProfile::describe() const {
  if (kind == "power") {
    std::ostringstream s;
    s << "power " << power;
    return s.str();
  }
  if (kind != "values") return kind;
  std::ostringstream s;
  s << "values [";
  for (size_t i = 0; i < values.size(); ++i) s << (i ? ", " : "") << values[i];
  return s.str() + "]";
}

std::vector<double> DialSchedule::at(int64_t step, int64_t n_layers, uint64_t seed) const {
  std::vector<double> v = base_at(step, n_layers, seed);
  const std::vector<double> w = profile.weights(n_layers);
  for (int64_t l = 0; l < n_layers; ++l) v[l] *= w[l];
  return v;
}

std::vector<double> DialSchedule::base_at(int64_t step, int64_t n_layers, uint64_t seed) const {
  if (kind == "constant") return broadcast(value, n_layers);
  if (kind == "linear") {
    return std::vector<double>(n_layers, from + (to - from) * ramp_fraction(step, start, end));
  }
  if (kind == "cosine") {
    const double f = ramp_fraction(step, start, end);
    return std::vector<double>(n_layers, from + (to - from) * 0.5 * (1.0 - std::cos(M_PI * f)));
  }
  if (kind == "points") {
    double v = points.front().value;
    if (step >= points.back().step) {
      v = points.back().value;
    } else {
      for (size_t i = 0; i + 1 < points.size(); ++i) {
        if (step >= points[i].step && step < points[i + 1].step) {
          const double f = ramp_fraction(step, points[i].step, points[i + 1].step);
          v = points[i].value + (points[i + 1].value - points[i].value) * f;
          break;
        }
      }
    }
    return std::vector<double>(n_layers, v);
  }
  if (kind == "stages") {
    for (const auto& s : stages) {
      if (s.until_step < 0 || step < s.until_step) return broadcast(s.value, n_layers);
    }
    return broadcast(stages.back().value, n_layers);
  }
  if (kind == "uniform") {
    const double u = mix64_unit(mix64(mix64(seed ^ 0xA5A5A5A5DEADBEEFull) ^ static_cast<uint64_t>(step)));
    return std::vector<double>(n_layers, lo + (hi - lo) * u);
  }
  throw ConfigError("train.dial.schedule: unknown kind '" + kind + "'");
}

std::string DialSchedule::stage_at(int64_t step) const {
  if (kind != "stages") return "";
  for (const auto& s : stages) {
    if (s.until_step < 0 || step < s.until_step) return s.name;
  }
  return stages.back().name;
}

}  // namespace localist
