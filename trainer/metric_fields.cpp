// SPDX-License-Identifier: Apache-2.0
// metric_fields.cpp: see metric_fields.h.
#include "trainer/metric_fields.h"

#include <algorithm>

#include "core/error.h"

namespace localist {
namespace {

#define LOCALIST_FIELD(expr) [](const EvalMetrics& m) -> nlohmann::json { return expr; }

double bounds_min(const EvalMetrics& m) {
  return std::min({m.bound_epsilon_holds, m.bound_entropy_holds, m.bound_delta_holds});
}

}  // namespace

const std::vector<MetricField>& metric_fields() {
  static const std::vector<MetricField> fields = {
      {"dial", LOCALIST_FIELD(m.dial), true, "dial", 5, 2},
      {"attn_entropy_bits", LOCALIST_FIELD(m.attn_entropy), true, "H_attn", 7, 3},
      {"attn_entropy_unweighted_bits", LOCALIST_FIELD(m.attn_entropy_unweighted), true, "H_unw", 7, 3},
      {"routing_entropy_bits", LOCALIST_FIELD(m.routing_entropy), true, "H_rt", 6, 3},
      {"mutual_info_bits", LOCALIST_FIELD(m.mutual_info), true, "I_pi", 6, 3},
      {"max_block_share", LOCALIST_FIELD(m.max_share), true, "share", 6, 3},
      {"own_fidelity_mass", LOCALIST_FIELD(m.own_fidelity_mass), true, "fid", 7, 4},
      {"own_fidelity_top1", LOCALIST_FIELD(m.own_fidelity_top1), true, "top1", 6, 3},
      {"rule_fidelity_mass", LOCALIST_FIELD(m.rule_fidelity_mass), true, "rule", 6, 3,
       [](const EvalMetrics& m) { return m.rule_pairs == 0; }},
      {"rule_fidelity_top1", LOCALIST_FIELD(m.rule_fidelity_top1), true},
      {"perplexity", LOCALIST_FIELD(m.perplexity), true, "ppl", 7, 3},
      {"accuracy", LOCALIST_FIELD(m.accuracy), true, "acc", 6, 3},
      {"ce_nats", LOCALIST_FIELD(m.ce_nats), true},
      {"bits_per_token", LOCALIST_FIELD(m.bits_per_token), true},
      {"bits_per_byte", LOCALIST_FIELD(m.bits_per_byte), true, "bpb", 6, 3},
      {"epsilon_mean", LOCALIST_FIELD(m.epsilon_mean), true, "eps", 7, 4},
      {"delta_mean", LOCALIST_FIELD(m.delta_mean), true},
      {"s_max", LOCALIST_FIELD(m.s_max), true},
      {"lambda_star_median", LOCALIST_FIELD(m.lambda_star_median), true, "lam*", 7, 3},
      {"bound_epsilon_holds", LOCALIST_FIELD(m.bound_epsilon_holds), true},
      {"bound_entropy_holds", LOCALIST_FIELD(m.bound_entropy_holds), true},
      {"bound_delta_holds", LOCALIST_FIELD(m.bound_delta_holds), true},
      {"tokens", LOCALIST_FIELD(m.tokens), true},
      // Not CSV columns: counts, per-layer and per-block lists, and the table's summary.
      {"bytes", LOCALIST_FIELD(m.bytes)},
      {"code_length_bits", LOCALIST_FIELD(m.code_length_bits)},
      {"attn_entropy_per_layer_bits", LOCALIST_FIELD(m.attn_entropy_per_layer)},
      {"own_fidelity_per_layer", LOCALIST_FIELD(m.own_fidelity_per_layer)},
      {"block_share", LOCALIST_FIELD(m.block_share)},
      {"block_share_by_layer", LOCALIST_FIELD(m.block_share_by_layer)},
      {"own_pairs", LOCALIST_FIELD(m.own_pairs)},
      {"rule_pairs", LOCALIST_FIELD(m.rule_pairs)},
      {"bound_queries", LOCALIST_FIELD(m.bound_queries)},
      // The smallest fraction of queries on which an M8 bound holds (table only).
      {nullptr, LOCALIST_FIELD(bounds_min(m)), false, "bounds", 6, 4},
  };
  return fields;
}

int metric_csv_column(const std::string& name) {
  int column = 0;
  for (const auto& f : metric_fields()) {
    if (!f.csv) continue;
    ++column;
    if (f.name == name) return column;
  }
  throw Error("metric '" + name + "' is not a column of sweep.csv");
}

}  // namespace localist
