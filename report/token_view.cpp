// SPDX-License-Identifier: Apache-2.0
// token_view.cpp: see token_view.h. Everything is read from the traces on the CPU; the
// per-rule figures recompute each rule's own targets (RuleSet::only) against the
// attention the pass used with the whole rule set.
#include "report/token_view.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

namespace localist {
namespace {

constexpr double kLn2 = 0.69314718055994530942;

double round4(double x) { return std::round(x * 1e4) / 1e4; }

template <typename T>
std::vector<T> to_vector(const at::Tensor& t) {
  const auto c = t.to(at::kCPU).contiguous();
  return std::vector<T>(c.data_ptr<T>(), c.data_ptr<T>() + c.numel());
}

}  // namespace

TokenView::TokenView(const RuleSet* rules, const std::vector<std::string>& token_texts, TokenViewOptions options)
    : rules_(rules && !rules->empty() ? rules : nullptr), texts_(token_texts), options_(options) {
  if (rules_) rule_stats_.resize(rules_->rules().size());
}

void TokenView::add(const ForwardResult& r, const at::Tensor& inputs_in, const at::Tensor& targets_in,
                    const std::vector<std::string>& domains, const std::vector<int64_t>& index) {
  at::NoGradGuard no_grad;
  const auto inputs = inputs_in.to(at::kCPU).to(at::kLong).contiguous();
  const int64_t B = inputs.size(0), T = inputs.size(1), L = static_cast<int64_t>(r.traces.size());
  if (slots_.empty()) {
    slots_ = to_vector<int64_t>(r.active_blocks.to(at::kLong));
    head_block_ = to_vector<int64_t>(r.head_block.to(at::kLong));
    const size_t K = slots_.size();
    block_tokens_.assign(L, std::vector<std::map<std::string, int64_t>>(K));
    block_contexts_.assign(L, std::vector<std::vector<Context>>(K));
    block_counts_.assign(L, std::vector<int64_t>(K, 0));
  }
  const int64_t K = static_cast<int64_t>(slots_.size()), H = static_cast<int64_t>(head_block_.size());
  const auto logp = at::log_softmax(r.logits.to(at::kCPU).to(at::kDouble), -1);
  const auto bits = to_vector<double>(-logp.gather(-1, targets_in.to(at::kCPU).to(at::kLong).unsqueeze(-1)) / kLn2);
  const auto ids = to_vector<int64_t>(inputs);
  for (int64_t b = 0; b < B; ++b) {
    Window& w = windows_[index[b]];
    w.index = index[b];
    w.domain = b < static_cast<int64_t>(domains.size()) ? domains[b] : "";
    w.ids.assign(ids.begin() + b * T, ids.begin() + (b + 1) * T);
    w.bits.assign(bits.begin() + b * T, bits.begin() + (b + 1) * T);
    w.rules.assign(T, {});
    w.layers.assign(L, Layer{});
  }
  positions_ += B * T;
  for (int64_t l = 0; l < L; ++l) {
    const LayerTrace& tr = r.traces[l];
    const auto hard = to_vector<int64_t>(tr.hard.to(at::kLong));
    const auto pi = to_vector<float>(tr.pi.to(at::kFloat));
    const auto gate = tr.gate.defined() ? to_vector<float>(tr.gate.to(at::kFloat)) : std::vector<float>(pi.size(), 1.f);
    const auto alpha = tr.alpha.to(at::kCPU).to(at::kFloat);
    const int64_t k = std::min<int64_t>(options_.top_per_head, T);
    const auto top = alpha.topk(k, -1);
    const auto top_w = to_vector<float>(std::get<0>(top));
    const auto top_j = to_vector<int64_t>(std::get<1>(top));
    std::vector<float> rule_mass;
    std::vector<bool> fired;
    if (tr.rule_targets.defined()) {
      const auto targets = tr.rule_targets.to(at::kCPU);
      rule_mass = to_vector<float>((alpha * targets.unsqueeze(1).to(at::kFloat)).sum(-1).mean(1));  // (B,T)
      const auto f = to_vector<bool>(tr.rule_fired.to(at::kCPU));
      fired.assign(f.begin(), f.end());
    }
    for (int64_t b = 0; b < B; ++b) {
      Window& w = windows_[index[b]];
      Layer& ly = w.layers[l];
      ly.block.resize(T);
      ly.pi.assign(pi.begin() + b * T * K, pi.begin() + (b + 1) * T * K);
      ly.gate.assign(gate.begin() + b * T * K, gate.begin() + (b + 1) * T * K);
      ly.top.assign(T, {});
      ly.rule_mass.assign(T, -1.f);
      for (int64_t i = 0; i < T; ++i) {
        const int64_t a = hard[b * T + i];
        ly.block[i] = slots_[a];
        ++block_counts_[l][a];
        ++block_tokens_[l][a][texts_[w.ids[i]]];
        block_contexts_[l][a].push_back({pi[(b * T + i) * K + a], w.index, i});
        for (int64_t h = 0; h < H; ++h) {
          for (int64_t t = 0; t < k; ++t) {
            const int64_t at = ((b * H + h) * T + i) * k + t;
            if (top_j[at] <= i && top_w[at] > 0) {
              ly.top[i].insert(ly.top[i].end(), {float(h), float(top_j[at]), top_w[at]});
            }
          }
        }
        if (!fired.empty() && fired[b * T + i]) ly.rule_mass[i] = rule_mass[b * T + i];
      }
    }
  }
  if (rules_) add_rules(r, inputs, domains, index);
}

void TokenView::add_rules(const ForwardResult& r, const at::Tensor& inputs, const std::vector<std::string>& domains,
                          const std::vector<int64_t>& index) {
  const int64_t B = inputs.size(0), T = inputs.size(1);
  const auto slots = at::tensor(slots_, at::kLong);
  const auto causal = at::ones({T, T}, at::kBool).tril();  // keys j <= i
  for (size_t ri = 0; ri < rules_->rules().size(); ++ri) {
    const Rule& rule = rules_->rules()[ri];
    const RuleMasks m = rules_->only(ri).masks(inputs, domains, texts_, at::kCPU);
    RuleStats& st = rule_stats_[ri];
    at::Tensor fired_any = at::zeros({B, T}, at::kBool);
    if (rule.kind == "route") {
      if (m.route_block.defined()) fired_any = m.route_block.ge(0);
    } else {
      for (const LayerTrace& tr : r.traces) {
        at::Tensor targets = at::zeros({B, T, T}, at::kBool);
        if (m.point_targets.defined()) targets = targets | m.point_targets;
        if (m.point_block.defined()) {
          const auto key_slot = slots.index_select(0, tr.hard.to(at::kCPU).to(at::kLong).flatten()).view({B, 1, T});
          const auto pb = m.point_block.unsqueeze(2);
          targets = targets | (pb.ge(0) & key_slot.eq(pb));
        }
        targets = targets & causal;
        const auto fired = targets.any(-1);  // (B,T)
        if (!fired.any().item<bool>()) continue;
        fired_any = fired_any | fired;
        const auto alpha = tr.alpha.to(at::kCPU).to(at::kDouble);
        const auto mass = to_vector<double>((alpha * targets.unsqueeze(1).to(at::kDouble)).sum(-1));  // (B,H,T)
        const auto top1 =
            to_vector<bool>(targets.unsqueeze(1).expand_as(alpha).gather(-1, alpha.argmax(-1, true)).squeeze(-1));
        const auto f = to_vector<bool>(fired);
        const int64_t H = alpha.size(1);
        for (int64_t b = 0; b < B; ++b) {
          for (int64_t i = 0; i < T; ++i) {
            if (!f[b * T + i]) continue;
            auto& q = st.queries[{index[b], i}];
            for (int64_t h = 0; h < H; ++h) {
              const int64_t at = (b * H + h) * T + i;
              st.mass += mass[at];
              st.top1 += top1[at] ? 1 : 0;
              st.eps_max = std::max(st.eps_max, 1.0 - mass[at]);
              ++st.pairs;
              q.first += mass[at];
              ++q.second;
            }
          }
        }
      }
    }
    const auto f = to_vector<bool>(fired_any);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t i = 0; i < T; ++i) {
        if (!f[b * T + i]) continue;
        ++st.firings;
        windows_[index[b]].rules[i].push_back(static_cast<int>(ri));
      }
    }
  }
}

nlohmann::json TokenView::windows_json(const std::string& llm, const std::vector<int64_t>* only) const {
  nlohmann::json out = nlohmann::json::array();
  const int64_t K = static_cast<int64_t>(slots_.size());
  for (const auto& [index, w] : windows_) {
    if (only && std::find(only->begin(), only->end(), index) == only->end()) continue;
    nlohmann::json j = {{"index", index}, {"domain", w.domain}, {"llm", llm}};
    nlohmann::json tokens = nlohmann::json::array(), bits = nlohmann::json::array();
    for (size_t i = 0; i < w.ids.size(); ++i) {
      tokens.push_back(texts_[w.ids[i]]);
      bits.push_back(round4(w.bits[i]));
    }
    j["tokens"] = std::move(tokens);
    j["bits"] = std::move(bits);
    j["rules"] = w.rules;
    nlohmann::json layers = nlohmann::json::array();
    for (const Layer& ly : w.layers) {
      nlohmann::json pi = nlohmann::json::array(), gate = nlohmann::json::array(), top = nlohmann::json::array(),
                     mass = nlohmann::json::array();
      for (size_t i = 0; i < ly.block.size(); ++i) {
        nlohmann::json p = nlohmann::json::array(), g = nlohmann::json::array(), t = nlohmann::json::array();
        for (int64_t k = 0; k < K; ++k) {
          p.push_back(round4(ly.pi[i * K + k]));
          g.push_back(round4(ly.gate[i * K + k]));
        }
        for (size_t e = 0; e + 2 < ly.top[i].size(); e += 3) {
          t.push_back({int64_t(ly.top[i][e]), int64_t(ly.top[i][e + 1]), round4(ly.top[i][e + 2])});
        }
        pi.push_back(std::move(p));
        gate.push_back(std::move(g));
        top.push_back(std::move(t));
        mass.push_back(ly.rule_mass[i] < 0 ? nlohmann::json() : nlohmann::json(round4(ly.rule_mass[i])));
      }
      layers.push_back({{"block", ly.block},
                        {"pi", std::move(pi)},
                        {"gate", std::move(gate)},
                        {"top", std::move(top)},
                        {"rule_mass", std::move(mass)}});
    }
    j["layers"] = std::move(layers);
    out.push_back(std::move(j));
  }
  return out;
}

std::string TokenView::context_text(const Context& c) const {
  const Window& w = windows_.at(c.window);
  std::string s;
  for (int64_t i = std::max<int64_t>(0, c.position - 12); i < c.position; ++i) s += texts_[w.ids[i]];
  return s;
}

nlohmann::json TokenView::blocks_json(const AnchorCode& anchors) const {
  nlohmann::json out = nlohmann::json::array();
  const int64_t K = static_cast<int64_t>(slots_.size()), L = static_cast<int64_t>(block_counts_.size());
  auto anchor = [&](int64_t slot) {
    return std::vector<double>(anchors.values.begin() + slot * anchors.dim,
                               anchors.values.begin() + (slot + 1) * anchors.dim);
  };
  for (int64_t a = 0; a < K; ++a) {
    const auto code = anchor(slots_[a]);
    double coherence = 0;
    for (int64_t b = 0; b < K; ++b) {
      if (b == a) continue;
      const auto other = anchor(slots_[b]);
      double dot = 0;
      for (int64_t d = 0; d < anchors.dim; ++d) dot += code[d] * other[d];
      coherence = std::max(coherence, std::abs(dot));
    }
    nlohmann::json layers = nlohmann::json::array();
    for (int64_t l = 0; l < L; ++l) {
      std::vector<std::pair<std::string, int64_t>> tokens(block_tokens_[l][a].begin(), block_tokens_[l][a].end());
      std::stable_sort(tokens.begin(), tokens.end(), [](const auto& x, const auto& y) { return x.second > y.second; });
      if (static_cast<int64_t>(tokens.size()) > options_.tokens_per_block) tokens.resize(options_.tokens_per_block);
      nlohmann::json tj = nlohmann::json::array();
      for (const auto& [text, n] : tokens) tj.push_back({{"text", text}, {"count", n}});
      std::vector<Context> ctx = block_contexts_[l][a];
      const auto n = std::min<size_t>(ctx.size(), options_.contexts_per_block);
      std::partial_sort(ctx.begin(), ctx.begin() + n, ctx.end(), [](const Context& x, const Context& y) {
        return x.pi != y.pi ? x.pi > y.pi : std::make_pair(x.window, x.position) < std::make_pair(y.window, y.position);
      });
      nlohmann::json cj = nlohmann::json::array();
      for (size_t c = 0; c < n; ++c) {
        const Window& w = windows_.at(ctx[c].window);
        cj.push_back({{"window", ctx[c].window},
                      {"position", ctx[c].position},
                      {"pi", round4(ctx[c].pi)},
                      {"before", context_text(ctx[c])},
                      {"token", texts_[w.ids[ctx[c].position]]}});
      }
      layers.push_back({{"share", positions_ ? double(block_counts_[l][a]) / positions_ : 0.0},
                        {"tokens", std::move(tj)},
                        {"contexts", std::move(cj)}});
    }
    out.push_back({{"slot", slots_[a]}, {"anchor", code}, {"coherence", coherence}, {"layers", std::move(layers)}});
  }
  return out;
}

nlohmann::json TokenView::rules_json() const {
  nlohmann::json out = nlohmann::json::array();
  if (!rules_) return out;
  for (size_t ri = 0; ri < rule_stats_.size(); ++ri) {
    const Rule& rule = rules_->rules()[ri];
    const RuleStats& st = rule_stats_[ri];
    nlohmann::json j = {
        {"index", ri}, {"name", rule.name}, {"kind", rule.kind}, {"firings", st.firings}, {"pairs", st.pairs}};
    if (rule.kind == "point") {
      std::vector<std::pair<double, std::pair<int64_t, int64_t>>> low;
      for (const auto& [where, q] : st.queries) {
        const double m = q.first / q.second;
        if (m < options_.fidelity_threshold) low.push_back({m, where});
      }
      std::stable_sort(low.begin(), low.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
      j["low_fidelity_count"] = low.size();
      if (static_cast<int64_t>(low.size()) > options_.low_fidelity_per_rule) low.resize(options_.low_fidelity_per_rule);
      nlohmann::json lj = nlohmann::json::array();
      for (const auto& [m, where] : low)
        lj.push_back({{"window", where.first}, {"position", where.second}, {"mass", m}});
      j["low_fidelity"] = std::move(lj);
      if (st.pairs > 0) {
        j["fidelity_mass"] = st.mass / st.pairs;
        j["fidelity_top1"] = st.top1 / st.pairs;
        j["epsilon_mean"] = 1.0 - st.mass / st.pairs;
        j["epsilon_max"] = st.eps_max;
      }
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace localist
