// SPDX-License-Identifier: Apache-2.0
// pool_eval.h: evaluation of a pool of LLMs on held-out windows (DESIGN.md §1 M11 step
// 6): bits per token for every (held-out domain × LLM), and for the pool answering each
// window by its tag (the domain's owner), by argmin code length on the first m tokens, by
// the Bayesian mixture and by the oracle (the best LLM per window); and how often argmin
// routing agrees with the tag, per domain, for several prefix lengths m. Every LLM scores
// every window without its tag (no domain routes), as a prompt without a tag would be.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "model/localist_model.h"
#include "model/rules.h"
#include "trainer/evaluate.h"

namespace localist {

struct PoolEvalLlm {
  std::string name;
  LocalistModel* model = nullptr;
  const RuleSet* rules = nullptr;  // may be null
};

struct PoolEvalSpec {
  std::vector<PoolEvalLlm> llms;
  std::vector<double> priors;                          // per LLM (training shares), positive
  std::vector<int> owner;                              // per window of the set: the LLM its domain's tag names
  int64_t route_prefix = 16;                           // m of the argmin column
  std::vector<int64_t> agreement_prefixes{16, 64, 0};  // 0: the whole window
  std::vector<double> dial;                            // per layer
  EvalInputs inputs;                                   // token texts, device, batch, pad
};

struct PoolEvalResult {
  std::vector<std::string> columns;            // the LLMs, then tag, argmin@m, mixture, oracle
  std::vector<std::string> domains;            // held-out domains (first-seen order), then "all"
  std::vector<std::vector<double>> bits;       // [domain][column]: bits per token
  std::vector<int64_t> windows;                // per domain
  std::vector<int64_t> prefixes;               // the agreement table's m (the whole window as its length)
  std::vector<std::vector<double>> agreement;  // [domain][prefix]: share of windows argmin sends to the tag's LLM
  double mixture_bound_slack = 0;              // min over windows of (min_l CL_l + log2 1/prior_l − CL_mix) >= 0
  nlohmann::json to_json() const;
};

// Per-token bits of every window under `model` (N, T) float64 (scored untagged).
at::Tensor pool_window_bits(LocalistModel& model, const EvalSet& set, const RuleSet* rules,
                            const std::vector<double>& dial, const EvalInputs& in);
PoolEvalResult pool_evaluate(const EvalSet& set, const PoolEvalSpec& spec);
std::string pool_eval_table(const PoolEvalResult& r);
// Writes pool.csv and pool.json into dir; returns the files written.
std::vector<std::string> pool_eval_write(const PoolEvalResult& r, const std::string& dir);

}  // namespace localist
