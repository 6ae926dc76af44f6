// SPDX-License-Identifier: Apache-2.0
// metrics.h: M7 metrics (bits everywhere) and M8 bound diagnostics, accumulated over
// evaluation batches from the traces of the forward pass, i.e. from the attention
// and routing the model actually used. A bound that fails on any query is a bug.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "model/bounds.h"
#include "model/localist_model.h"

namespace localist {

struct EvalMetrics {
  double dial = 0;  // mean over layers
  // language model
  int64_t tokens = 0, bytes = 0;
  double ce_nats = 0, bits_per_token = 0, bits_per_byte = 0, perplexity = 0, accuracy = 0, code_length_bits = 0;
  // attention entropy (bits), mean over layers, positions i >= 1 and sequences
  double attn_entropy = 0;             // gate-weighted over heads
  double attn_entropy_unweighted = 0;  // plain mean over heads
  std::vector<double> attn_entropy_per_layer;
  // routing
  double routing_entropy = 0, mutual_info = 0, max_share = 0;
  std::vector<double> block_share;  // per active block, mean over layers of the hard-assignment share
  std::vector<std::vector<double>> block_share_by_layer;  // [layer][active block], the same per layer
  // pointer fidelity: own block (no point rule fired) and point rules
  double own_fidelity_mass = 0, own_fidelity_top1 = 0;
  int64_t own_pairs = 0;
  std::vector<double> own_fidelity_per_layer;  // own-block mass per layer (0 where a layer has no pair)
  double rule_fidelity_mass = 0, rule_fidelity_top1 = 0;
  int64_t rule_pairs = 0;
  // M8 over (head, query) pairs with on- and off-target keys
  int64_t bound_queries = 0;
  double epsilon_mean = 0, delta_mean = 0, s_max = 0, lambda_star_median = 0;
  double bound_epsilon_holds = 1, bound_entropy_holds = 1, bound_delta_holds = 1;  // fractions
  // Over the same queries: ε in kHistogramBins equal bins of [0, 1]; λ* in equal bins of
  // [0, 1] (the dial's range), with the queries whose λ* is below 0 (fidelity guaranteed
  // at every dial) or above 1 (at none) counted apart.
  static constexpr int kHistogramBins = 20;
  std::vector<int64_t> epsilon_histogram, lambda_star_histogram;
  int64_t lambda_star_below = 0, lambda_star_above = 0;
};

class MetricsAccumulator {
 public:
  // token_bytes[id]: bytes the token decodes to (0 for special tokens).
  MetricsAccumulator(const ModelConfig& config, std::vector<int64_t> token_bytes, double epsilon0 = 0.1);
  // `result` from a forward pass with trace = true; targets (B,T) int64 (pad ignored via pad_id).
  void add(const ForwardResult& result, const at::Tensor& targets, int64_t pad_id);
  EvalMetrics finish() const;

 private:
  void add_language_model(const ForwardResult& result, const at::Tensor& targets, int64_t pad_id);
  ModelConfig config_;
  std::vector<int64_t> token_bytes_;
  double epsilon0_;
  EvalMetrics sums_;
  int64_t ent_count_ = 0;
  std::vector<double> ent_layer_sum_;
  std::vector<double> pi_sum_;         // per layer x K
  std::vector<double> share_sum_;      // per layer x K
  std::vector<double> route_ent_sum_;  // per layer
  int64_t route_count_ = 0;
  double dial_sum_ = 0;
  int64_t dial_count_ = 0;
  double own_mass_ = 0, own_top1_ = 0, rule_mass_ = 0, rule_top1_ = 0;
  std::vector<double> own_mass_layer_;
  std::vector<int64_t> own_pairs_layer_;
  double eps_sum_ = 0, delta_sum_ = 0, eps_ok_ = 0, ent_ok_ = 0, delta_ok_ = 0;
  std::vector<double> lambda_stars_;
  int64_t correct_ = 0;
  double ce_sum_ = 0;
};

}  // namespace localist
