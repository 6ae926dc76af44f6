// SPDX-License-Identifier: Apache-2.0
// rules.h: M6 dynamic rule injection. A rules file (YAML or JSON) maps contexts to
// targets; it is applied per batch and can be swapped between batches or at inference
// without touching weights. Kinds:
//   route: tokens matching `match` are assigned to block `block` (pi := one-hot).
//   point: a query matching `query` points to the most recent earlier key matching
//          `target`, or to every key of block `target_block`; bias +rho there.
// Patterns: {tokens: [ids]}, {regex: "..."} over the decoded text (a token matches when
// a match overlaps its bytes; RE2 syntax, matched in time linear in the text, so no rule
// can stall training), or {domain: name} (every token of that domain's rows).
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "model/localist_model.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace localist {

struct TokenPattern {
  std::vector<int64_t> tokens;
  std::string regex_text;
  std::shared_ptr<const re2::RE2> regex;  // compiled once, shared by copies of the rule
  std::string domain;
};

struct Rule {
  std::string name;
  std::string kind;     // route | point
  TokenPattern match;   // route: the tokens; point: the queries
  int64_t block = -1;   // route: target slot; point: target_block (or -1)
  TokenPattern target;  // point: keys to point to (when block < 0)
};

// A block recruited for a domain (M10, docs/recruitment.md): every token of that domain's
// rows is routed to it, as by a route rule {domain: name}.
struct DomainRoute {
  std::string domain;
  int64_t slot = -1;
};

class RuleSet {
 public:
  RuleSet() = default;
  // Strict parse (unknown keys, bad regexes, blocks outside [0, k_max)): ConfigError with file:line:col.
  static RuleSet load(const std::string& path, int64_t k_max);
  static RuleSet parse(const std::string& text, const std::string& name, int64_t k_max);
  // This set with one route rule per domain route in front: later rules win, so the
  // set's own rules keep precedence where both fire.
  RuleSet with_domain_routes(const std::vector<DomainRoute>& routes) const;
  // The set holding only rule i (which queries that rule alone fires for, and its targets).
  RuleSet only(size_t i) const;
  bool empty() const { return rules_.empty(); }
  const std::vector<Rule>& rules() const { return rules_; }
  const std::string& source() const { return source_; }

  // tokens (B,T) int64 on CPU; domains[b] the row's domain; token_text[id] the bytes of
  // each vocabulary id ("" for special tokens). Returns masks on `device`.
  RuleMasks masks(const at::Tensor& tokens, const std::vector<std::string>& domains,
                  const std::vector<std::string>& token_text, const at::Device& device) const;

 private:
  std::vector<Rule> rules_;
  std::string source_;
};

// Which tokens of one row match a pattern.
std::vector<bool> pattern_match(const TokenPattern& p, const int64_t* ids, int64_t n, const std::string& domain,
                                const std::vector<std::string>& token_text);

}  // namespace localist
