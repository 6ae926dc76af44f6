// SPDX-License-Identifier: Apache-2.0
// token_view.h: what the audit report shows token by token, read from the traced passes
// of an evaluation: each token's block, π and gate per layer, the earlier tokens each
// head attends to most, the rules that fired at it and the mass on their targets, its
// next-token bits; and what these add up to per block (top tokens, contexts) and per
// rule (firings, pointer fidelity, ε, the queries below a fidelity threshold).
// Limits: keeps top_per_head positions per head; the per-block and per-rule lists are capped.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/anchors.h"
#include "model/localist_model.h"
#include "model/rules.h"

namespace localist {

struct TokenViewOptions {
  int64_t top_per_head = 3;         // attended positions kept per (head, query)
  double fidelity_threshold = 0.5;  // a rule's queries below this mass are listed
  int64_t contexts_per_block = 5;   // per layer: the tokens routed to the block most surely
  int64_t tokens_per_block = 10;    // per layer: the most frequent tokens routed to it
  int64_t low_fidelity_per_rule = 50;
};

class TokenView {
 public:
  // rules: the rules the passes ran with (may be null); token_texts: each id's bytes.
  TokenView(const RuleSet* rules, const std::vector<std::string>& token_texts, TokenViewOptions options);

  // One traced pass over `inputs` (B,T) and `targets` (B,T) with the rows' domains; row b
  // is the report's window windows[b].
  void add(const ForwardResult& r, const at::Tensor& inputs, const at::Tensor& targets,
           const std::vector<std::string>& domains, const std::vector<int64_t>& windows);

  // The windows seen, in window order ("llm" set to `llm`); `only`: these window indices.
  nlohmann::json windows_json(const std::string& llm, const std::vector<int64_t>* only = nullptr) const;
  // Per active block: slot, anchor and its coherence with the other active anchors, and
  // per layer its token share, most frequent tokens and surest contexts.
  nlohmann::json blocks_json(const AnchorCode& anchors) const;
  // Per rule: kind, firings, fidelity (mass and top-1), ε, and the low-fidelity queries.
  nlohmann::json rules_json() const;
  const std::vector<int64_t>& active_slots() const { return slots_; }
  const std::vector<int64_t>& head_blocks() const { return head_block_; }

 private:
  struct Layer {
    std::vector<int64_t> block;           // slot per position
    std::vector<float> pi, gate;          // T x K
    std::vector<std::vector<float>> top;  // per position: (head, position, weight) triples
    std::vector<float> rule_mass;         // per position: mean over heads of the mass on T_rule(i); -1 none
  };
  struct Window {
    int64_t index = 0;
    std::string domain;
    std::vector<int64_t> ids;
    std::vector<float> bits;              // per position: bits of the next token
    std::vector<std::vector<int>> rules;  // per position: the rules that fired
    std::vector<Layer> layers;
  };
  struct RuleStats {
    std::map<std::pair<int64_t, int64_t>, std::pair<double, int64_t>> queries;  // (window, pos) -> (mass sum, pairs)
    double mass = 0, top1 = 0, eps_max = 0;
    int64_t pairs = 0, firings = 0;
  };
  struct Context {
    float pi;
    int64_t window, position;
  };
  void add_rules(const ForwardResult& r, const at::Tensor& inputs, const std::vector<std::string>& domains,
                 const std::vector<int64_t>& windows);
  std::string context_text(const Context& c) const;

  const RuleSet* rules_;
  const std::vector<std::string>& texts_;
  TokenViewOptions options_;
  std::vector<int64_t> slots_, head_block_;
  std::map<int64_t, Window> windows_;
  std::vector<RuleStats> rule_stats_;
  // [layer][active block]
  std::vector<std::vector<std::map<std::string, int64_t>>> block_tokens_;
  std::vector<std::vector<std::vector<Context>>> block_contexts_;
  std::vector<std::vector<int64_t>> block_counts_;
  int64_t positions_ = 0;
};

}  // namespace localist
