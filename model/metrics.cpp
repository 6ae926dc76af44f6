// SPDX-License-Identifier: Apache-2.0
// metrics.cpp: see metrics.h. Everything is computed in float64 from the traced tensors.
#include "model/metrics.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "core/error.h"

namespace localist {
namespace {

constexpr double kLn2 = 0.69314718055994530942;

// Adds x's values in [0, 1] to `bins` equal bins (1 goes to the last); returns how many
// fell below 0 and above 1.
std::pair<int64_t, int64_t> histogram_add(const at::Tensor& x, std::vector<int64_t>& bins) {
  const auto v = x.to(at::kDouble).contiguous();
  const auto* p = v.data_ptr<double>();
  const int64_t n = static_cast<int64_t>(bins.size());
  int64_t below = 0, above = 0;
  for (int64_t i = 0; i < v.numel(); ++i) {
    if (p[i] < 0)
      ++below;
    else if (p[i] > 1)
      ++above;
    else
      ++bins[std::min<int64_t>(n - 1, static_cast<int64_t>(p[i] * n))];
  }
  return {below, above};
}

}  // namespace

MetricsAccumulator::MetricsAccumulator(const ModelConfig& config, std::vector<int64_t> token_bytes, double epsilon0)
    : config_(config), token_bytes_(std::move(token_bytes)), epsilon0_(epsilon0) {
  ent_layer_sum_.assign(config.n_layers, 0.0);
  route_ent_sum_.assign(config.n_layers, 0.0);
  own_mass_layer_.assign(config.n_layers, 0.0);
  own_pairs_layer_.assign(config.n_layers, 0);
  sums_.epsilon_histogram.assign(EvalMetrics::kHistogramBins, 0);
  sums_.lambda_star_histogram.assign(EvalMetrics::kHistogramBins, 0);
}

void MetricsAccumulator::add_language_model(const ForwardResult& r, const at::Tensor& targets_in, int64_t pad_id) {
  const auto targets = targets_in.to(at::kCPU);
  const auto logp = at::log_softmax(r.logits.to(at::kDouble).to(at::kCPU), -1);
  const auto keep = targets.ne(pad_id);
  const auto nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  ce_sum_ += nll.masked_select(keep).sum().item<double>();
  correct_ += (logp.argmax(-1).eq(targets) & keep).sum().item<int64_t>();
  sums_.tokens += keep.sum().item<int64_t>();
  const auto flat = targets.masked_select(keep);
  const auto* t = flat.data_ptr<int64_t>();
  for (int64_t i = 0; i < flat.numel(); ++i) {
    sums_.bytes += (t[i] >= 0 && t[i] < static_cast<int64_t>(token_bytes_.size())) ? token_bytes_[t[i]] : 0;
  }
}

void MetricsAccumulator::add(const ForwardResult& r, const at::Tensor& targets_in, int64_t pad_id) {
  at::NoGradGuard no_grad;
  if (static_cast<int64_t>(r.traces.size()) != config_.n_layers) throw Error("metrics need a traced forward pass");
  add_language_model(r, targets_in, pad_id);

  const int64_t K = r.active_blocks.size(0);
  const auto head_block = r.head_block.to(at::kCPU);
  if (pi_sum_.empty()) {
    pi_sum_.assign(config_.n_layers * K, 0.0);
    share_sum_.assign(config_.n_layers * K, 0.0);
  }
  for (int64_t l = 0; l < config_.n_layers; ++l) {
    const LayerTrace& tr = r.traces[l];
    const auto alpha = tr.alpha.to(at::kCPU).to(at::kDouble);
    const auto gate = tr.gate.to(at::kCPU).to(at::kDouble);
    const auto pi = tr.pi.to(at::kCPU).to(at::kDouble);
    const auto hard = tr.hard.to(at::kCPU);
    const int64_t B = alpha.size(0), T = alpha.size(2);
    dial_sum_ += tr.dial;
    dial_count_ += 1;

    // Attention entropy over positions i >= 1: gate-weighted (g_ik / sum_k g_ik, split over
    // the block's heads) and plain mean over heads.
    const auto ent = attention_entropy(alpha).permute({0, 2, 1});  // (B,T,H)
    const auto g = gate.index_select(-1, head_block);
    const auto w = g / (g.sum(-1, true));
    const auto weighted = (w * ent).sum(-1).narrow(1, 1, T - 1);
    const double wsum = weighted.sum().item<double>();
    sums_.attn_entropy += wsum;
    sums_.attn_entropy_unweighted += ent.mean(-1).narrow(1, 1, T - 1).sum().item<double>();
    ent_layer_sum_[l] += wsum;
    if (l == 0) ent_count_ += B * (T - 1);

    // Routing.
    route_ent_sum_[l] += (-(at::xlogy(pi, pi)).sum(-1) / kLn2).sum().item<double>();
    if (l == 0) route_count_ += B * T;
    const auto pis = pi.reshape({-1, K}).sum(0);
    const auto shares = at::one_hot(hard.flatten(), K).sum(0).to(at::kDouble);
    for (int64_t k = 0; k < K; ++k) {
      pi_sum_[l * K + k] += pis[k].item<double>();
      share_sum_[l * K + k] += shares[k].item<double>();
    }

    // Targets: own block (keys whose hard block is the head's) unless a point rule fired.
    const auto own = hard.unsqueeze(1).unsqueeze(2).eq(head_block.view({1, -1, 1, 1}));  // (B,H,1,T)
    const auto fired = tr.rule_fired.to(at::kCPU);
    at::Tensor on_target = own.expand({B, head_block.size(0), T, T});
    if (tr.rule_targets.defined()) {
      on_target = at::where(fired.unsqueeze(1).unsqueeze(-1), tr.rule_targets.to(at::kCPU).unsqueeze(1), on_target);
    }
    const auto causal = at::ones({T, T}, at::kBool).tril();
    const auto A = on_target & causal;
    const auto has_target = A.any(-1);  // (B,H,T)
    const auto mass = (alpha * A).sum(-1);
    const auto top = A.gather(-1, alpha.argmax(-1, true)).squeeze(-1);
    const auto is_rule = fired.unsqueeze(1).expand_as(has_target) & has_target;
    const auto is_own = fired.logical_not().unsqueeze(1).expand_as(has_target) & has_target;
    const double layer_mass = mass.masked_select(is_own).sum().item<double>();
    const int64_t layer_pairs = is_own.sum().item<int64_t>();
    own_mass_ += layer_mass;
    own_top1_ += top.masked_select(is_own).sum().item<double>();
    sums_.own_pairs += layer_pairs;
    own_mass_layer_[l] += layer_mass;
    own_pairs_layer_[l] += layer_pairs;
    rule_mass_ += mass.masked_select(is_rule).sum().item<double>();
    rule_top1_ += top.masked_select(is_rule).sum().item<double>();
    sums_.rule_pairs += is_rule.sum().item<int64_t>();

    // M8.
    const auto pi_key = pi.index_select(-1, head_block).permute({0, 2, 1}).unsqueeze(2);
    const BoundCheck bc = bounds_check(alpha, tr.logits.to(at::kCPU), tr.scores.to(at::kCPU), pi_key, on_target, fired,
                                       tr.dial, config_.gamma, config_.rho, epsilon0_);
    const auto v = bc.valid;
    const int64_t n = v.sum().item<int64_t>();
    sums_.bound_queries += n;
    eps_sum_ += bc.epsilon.masked_select(v).sum().item<double>();
    delta_sum_ += bc.delta.masked_select(v).sum().item<double>();
    eps_ok_ += bc.eps_holds.masked_select(v).sum().item<double>();
    ent_ok_ += bc.entropy_holds.masked_select(v).sum().item<double>();
    delta_ok_ += bc.delta_holds.masked_select(v).sum().item<double>();
    if (n > 0) sums_.s_max = std::max(sums_.s_max, bc.s_max.masked_select(v).max().item<double>());
    const auto ls = bc.lambda_star.masked_select(v).contiguous();
    histogram_add(bc.epsilon.masked_select(v), sums_.epsilon_histogram);
    const auto [below, above] = histogram_add(ls, sums_.lambda_star_histogram);
    sums_.lambda_star_below += below;
    sums_.lambda_star_above += above;
    // Keep a bounded sample for the median (every k-th value).
    const int64_t stride = std::max<int64_t>(1, ls.numel() / 4096);
    const auto* lp = ls.data_ptr<double>();
    for (int64_t i = 0; i < ls.numel(); i += stride) lambda_stars_.push_back(lp[i]);
  }
}

EvalMetrics MetricsAccumulator::finish() const {
  EvalMetrics m = sums_;
  const int64_t L = config_.n_layers;
  m.dial = dial_count_ ? dial_sum_ / dial_count_ : 0;
  if (m.tokens > 0) {
    m.ce_nats = ce_sum_ / m.tokens;
    m.bits_per_token = m.ce_nats / kLn2;
    m.code_length_bits = ce_sum_ / kLn2;
    m.bits_per_byte = m.bytes > 0 ? m.code_length_bits / m.bytes : 0;
    m.perplexity = std::exp(m.ce_nats);
    m.accuracy = double(correct_) / m.tokens;
  }
  if (ent_count_ > 0) {
    m.attn_entropy = sums_.attn_entropy / (ent_count_ * L);
    m.attn_entropy_unweighted = sums_.attn_entropy_unweighted / (ent_count_ * L);
    m.attn_entropy_per_layer.clear();
    for (int64_t l = 0; l < L; ++l) m.attn_entropy_per_layer.push_back(ent_layer_sum_[l] / ent_count_);
  }
  if (route_count_ > 0 && !pi_sum_.empty()) {
    const int64_t K = static_cast<int64_t>(pi_sum_.size()) / L;
    double hsum = 0, mi = 0;
    m.block_share.assign(K, 0.0);
    m.block_share_by_layer.assign(L, std::vector<double>(K, 0.0));
    for (int64_t l = 0; l < L; ++l) {
      const double h_tok = route_ent_sum_[l] / route_count_;
      double h_mean = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = pi_sum_[l * K + k] / route_count_;
        if (p > 0) h_mean -= p * std::log2(p);
        m.block_share_by_layer[l][k] = share_sum_[l * K + k] / route_count_;
        m.block_share[k] += m.block_share_by_layer[l][k] / L;
      }
      hsum += h_tok;
      mi += h_mean - h_tok;
    }
    m.routing_entropy = hsum / L;
    m.mutual_info = mi / L;
    m.max_share = *std::max_element(m.block_share.begin(), m.block_share.end());
  }
  if (m.own_pairs > 0) m.own_fidelity_mass = own_mass_ / m.own_pairs, m.own_fidelity_top1 = own_top1_ / m.own_pairs;
  m.own_fidelity_per_layer.assign(L, 0.0);
  for (int64_t l = 0; l < L; ++l)
    if (own_pairs_layer_[l] > 0)
      m.own_fidelity_per_layer[l] = own_mass_layer_[l] / static_cast<double>(own_pairs_layer_[l]);
  if (m.rule_pairs > 0)
    m.rule_fidelity_mass = rule_mass_ / m.rule_pairs, m.rule_fidelity_top1 = rule_top1_ / m.rule_pairs;
  if (m.bound_queries > 0) {
    m.epsilon_mean = eps_sum_ / m.bound_queries;
    m.delta_mean = delta_sum_ / m.bound_queries;
    m.bound_epsilon_holds = eps_ok_ / m.bound_queries;
    m.bound_entropy_holds = ent_ok_ / m.bound_queries;
    m.bound_delta_holds = delta_ok_ / m.bound_queries;
    std::vector<double> ls = lambda_stars_;
    std::nth_element(ls.begin(), ls.begin() + ls.size() / 2, ls.end());
    m.lambda_star_median = ls[ls.size() / 2];
  }
  return m;
}

}  // namespace localist
