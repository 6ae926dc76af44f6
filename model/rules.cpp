// SPDX-License-Identifier: Apache-2.0
// rules.cpp: see rules.h.
#include "model/rules.h"

#include <re2/re2.h>

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.h"
#include "core/file_util.h"
#include "core/strict_yaml.h"

namespace localist {
namespace {

TokenPattern parse_pattern(StrictMap m, const std::string& what) {
  TokenPattern p;
  int kinds = 0;
  if (m.has("tokens")) {
    ++kinds;
    YAML::Node n = m.get_node("tokens");
    if (!n.IsSequence() || n.size() == 0) m.fail("tokens", "expected a non-empty list of token ids");
    for (size_t i = 0; i < n.size(); ++i) {
      int64_t id = -1;
      if (!YAML::convert<int64_t>::decode(n[i], id) || id < 0) {
        m.fail_at(n[i], m.key_path("tokens") + "[" + std::to_string(i) + "]", "expected a token id >= 0");
      }
      p.tokens.push_back(id);
    }
  }
  if (m.has("regex")) {
    ++kinds;
    p.regex_text = m.get_string("regex", "");
    // RE2, not std::regex: std::regex backtracks (a rule like "[a-z ]**," took over 10 s
    // on a 48-byte window, found by fuzzing) and overflows on huge counts; RE2 matches in
    // linear time and refuses what it cannot bound (counts above 1000, back-references).
    RE2::Options options;
    options.set_log_errors(false);
    options.set_max_mem(int64_t(8) << 20);
    auto re = std::make_shared<const RE2>(p.regex_text, options);
    if (!re->ok()) m.fail("regex", "invalid regular expression: " + re->error() + " (RE2 syntax)");
    p.regex = std::move(re);
    if (p.regex_text.empty()) m.fail("regex", "empty regular expression");
  }
  if (m.has("domain")) {
    ++kinds;
    p.domain = m.get_string("domain", "");
  }
  if (kinds != 1) m.fail("", what + " needs exactly one of tokens, regex or domain");
  m.finish();
  return p;
}

}  // namespace

RuleSet RuleSet::load(const std::string& path, int64_t k_max) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    throw ConfigError(std::string(e.what()) + " (the rules file)");
  }
  return parse(text, path, k_max);
}

RuleSet RuleSet::parse(const std::string& text, const std::string& name, int64_t k_max) {
  StrictMap root = StrictMap::parse(text, name);
  RuleSet set;
  set.source_ = name;
  for (StrictMap r : root.get_map_list("rules")) {
    Rule rule;
    rule.kind = r.get_string("kind", "", {"route", "point"});
    if (rule.kind.empty()) r.fail("", "each rule needs a kind: route or point");
    rule.name = r.get_string("name", rule.kind + std::to_string(set.rules_.size()));
    if (rule.kind == "route") {
      if (!r.has("match")) r.fail("", "a route rule needs `match`");
      if (!r.has("block")) r.fail("", "a route rule needs `block`");
      rule.match = parse_pattern(r.get_map("match"), "match");
      rule.block = r.get_int("block", 0, 0, k_max - 1);
    } else {
      if (!r.has("query")) r.fail("", "a point rule needs `query`");
      rule.match = parse_pattern(r.get_map("query"), "query");
      const bool has_target = r.has("target"), has_block = r.has("target_block");
      if (has_target == has_block) r.fail("", "a point rule needs exactly one of `target` or `target_block`");
      if (has_target)
        rule.target = parse_pattern(r.get_map("target"), "target");
      else
        rule.block = r.get_int("target_block", 0, 0, k_max - 1);
    }
    r.finish();
    set.rules_.push_back(std::move(rule));
  }
  root.finish();
  return set;
}

std::vector<bool> pattern_match(const TokenPattern& p, const int64_t* ids, int64_t n, const std::string& domain,
                                const std::vector<std::string>& token_text) {
  std::vector<bool> out(n, false);
  if (!p.domain.empty()) {
    if (p.domain == domain) out.assign(n, true);
    return out;
  }
  if (!p.tokens.empty()) {
    for (int64_t i = 0; i < n; ++i) {
      out[i] = std::find(p.tokens.begin(), p.tokens.end(), ids[i]) != p.tokens.end();
    }
    return out;
  }
  // Regex over the decoded row; a token matches when a match overlaps its bytes.
  std::string text;
  std::vector<size_t> begin(n), end(n);
  for (int64_t i = 0; i < n; ++i) {
    begin[i] = text.size();
    if (ids[i] >= 0 && ids[i] < static_cast<int64_t>(token_text.size())) text += token_text[ids[i]];
    end[i] = text.size();
  }
  std::vector<int> covered(text.size() + 1, 0);
  // Every leftmost match, left to right; an empty match covers nothing and moves on a byte.
  const re2::StringPiece all(text);
  re2::StringPiece match;
  for (size_t at = 0; at <= text.size();) {
    if (!p.regex->Match(all, at, text.size(), RE2::UNANCHORED, &match, 1)) break;
    const size_t b = static_cast<size_t>(match.data() - text.data()), e = b + match.size();
    for (size_t k = b; k < e; ++k) covered[k] = 1;
    at = e > b ? e : b + 1;
  }
  for (int64_t i = 0; i < n; ++i) {
    for (size_t k = begin[i]; k < end[i] && !out[i]; ++k) out[i] = covered[k] != 0;
  }
  return out;
}

RuleSet RuleSet::with_domain_routes(const std::vector<DomainRoute>& routes) const {
  RuleSet out;
  for (const auto& r : routes) {
    Rule rule;
    rule.name = "recruited block for domain " + r.domain;
    rule.kind = "route";
    rule.match.domain = r.domain;
    rule.block = r.slot;
    out.rules_.push_back(std::move(rule));
  }
  out.rules_.insert(out.rules_.end(), rules_.begin(), rules_.end());
  out.source_ = source_;
  return out;
}

RuleSet RuleSet::only(size_t i) const {
  RuleSet one;
  one.rules_.push_back(rules_.at(i));
  one.source_ = source_;
  return one;
}

RuleMasks RuleSet::masks(const at::Tensor& tokens_in, const std::vector<std::string>& domains,
                         const std::vector<std::string>& token_text, const at::Device& device) const {
  RuleMasks m;
  if (rules_.empty()) return m;
  const auto tokens = tokens_in.to(at::kCPU).to(at::kLong).contiguous();
  const int64_t B = tokens.size(0), T = tokens.size(1);
  auto route = at::full({B, T}, -1, at::kLong);
  auto point_block = at::full({B, T}, -1, at::kLong);
  // (B,T,T) only when a rule points to explicit targets: route rules alone (a recruited
  // domain's, every micro-batch) must not cost a T x T allocation per row.
  const bool any_point_target =
      std::any_of(rules_.begin(), rules_.end(), [](const Rule& r) { return r.kind == "point" && r.block < 0; });
  auto targets = at::zeros(any_point_target ? std::vector<int64_t>{B, T, T} : std::vector<int64_t>{0}, at::kBool);
  bool any_route = false, any_block = false, any_target = false;
  auto* rp = route.data_ptr<int64_t>();
  auto* bp = point_block.data_ptr<int64_t>();
  auto* tp = targets.data_ptr<bool>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t* ids = tokens.data_ptr<int64_t>() + b * T;
    const std::string& dom = b < static_cast<int64_t>(domains.size()) ? domains[b] : std::string();
    for (const Rule& r : rules_) {  // later rules win where they overlap
      const auto hit = pattern_match(r.match, ids, T, dom, token_text);
      if (r.kind == "route") {
        for (int64_t i = 0; i < T; ++i) {
          if (hit[i]) rp[b * T + i] = r.block, any_route = true;
        }
      } else if (r.block >= 0) {
        for (int64_t i = 0; i < T; ++i) {
          if (hit[i]) bp[b * T + i] = r.block, any_block = true;
        }
      } else {
        const auto key = pattern_match(r.target, ids, T, dom, token_text);
        int64_t last = -1;  // most recent earlier key matching the target
        for (int64_t i = 0; i < T; ++i) {
          if (hit[i] && last >= 0) tp[(b * T + i) * T + last] = true, any_target = true;
          if (key[i]) last = i;
        }
      }
    }
  }
  if (any_route) m.route_block = route.to(device);
  if (any_block) m.point_block = point_block.to(device);
  if (any_target) m.point_targets = targets.to(device);
  return m;
}

}  // namespace localist
