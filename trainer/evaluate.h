// SPDX-License-Identifier: Apache-2.0
// evaluate.h: held-out evaluation (M7 metrics, M8 bounds) at one or many dial values,
// and the sweep outputs: a printed table, CSV, JSON and a gnuplot PNG of entropy,
// fidelity and perplexity against λ.
#pragma once
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "data/data_config.h"
#include "model/localist_model.h"
#include "model/metrics.h"
#include "model/rules.h"

namespace localist {

// Fixed held-out windows: per held-out source (train: false), up to `per_source`
// consecutive non-overlapping windows of context + 1 tokens from its start.
struct EvalSet {
  at::Tensor tokens;                 // (N, context + 1) int64, CPU
  std::vector<std::string> domains;  // per row
};
EvalSet eval_set_load(const DataConfig& data, int64_t context, int64_t per_source);

struct EvalInputs {
  const std::vector<std::string>* token_texts = nullptr;  // for rules
  std::vector<int64_t> token_bytes;                       // for bits per byte
  int64_t pad_id = -1;
  at::Device device = at::kCPU;
  int64_t batch = 8;
  double epsilon0 = 0.1;
};

// Sees each traced batch after the metrics did: the pass over rows [first_row,
// first_row + rows) of the set (the audit report reads its token view from them).
using EvalObserver = std::function<void(const ForwardResult& result, int64_t first_row, int64_t rows)>;

EvalMetrics evaluate(LocalistModel& model, const EvalSet& set, const std::vector<double>& dial, const RuleSet* rules,
                     const EvalInputs& in, const EvalObserver& observe = {});
// The passes of `evaluate` into an accumulator of the caller's, so that sets of windows
// of different lengths (a text's last, shorter window) add up to one set of metrics.
void evaluate_into(MetricsAccumulator& acc, LocalistModel& model, const EvalSet& set, const std::vector<double>& dial,
                   const RuleSet* rules, const EvalInputs& in, const EvalObserver& observe = {});

nlohmann::json eval_metrics_json(const EvalMetrics& m);
std::string sweep_table(const std::vector<EvalMetrics>& rows);
// Writes sweep.csv, sweep.json and (when gnuplot is installed) sweep.png into `dir`.
// Returns the files written.
std::vector<std::string> sweep_write(const std::vector<EvalMetrics>& rows, const std::string& dir);

}  // namespace localist
