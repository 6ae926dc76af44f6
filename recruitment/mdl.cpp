// SPDX-License-Identifier: Apache-2.0
// mdl.cpp: see mdl.h.
#include "recruitment/mdl.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/error.h"

namespace localist {

int64_t mdl_block_parameters(const ModelConfig& c) {
  const int64_t width = c.heads_per_block * c.head_dim;  // the block's share of every attention layer
  return c.n_layers * (3 * width * c.d_model + 3 * width + c.d_model * width);
}

double mdl_block_cost_bits(int64_t p_blk, double n_eff, int64_t k_max) {
  // log2 of fewer than 2 tokens would make a block free or negative: floor at 1 bit/parameter/2.
  return 0.5 * static_cast<double>(p_blk) * std::log2(std::max(n_eff, 2.0)) + std::log2(static_cast<double>(k_max));
}

double mdl_effective_tokens(double candidate_share, int64_t horizon_steps, int64_t tokens_per_step) {
  return std::max(0.0, candidate_share) * static_cast<double>(horizon_steps) * static_cast<double>(tokens_per_step);
}

double mdl_gain_standard_error(const std::vector<double>& before, const std::vector<double>& after, double n_eff) {
  LOCALIST_CHECK(before.size() == after.size(), "recruitment: ", before.size(), " windows before and ", after.size(),
                 " after a trial");
  const size_t n = before.size();
  if (n < 2) return 0.0;
  double mean = 0;
  for (size_t i = 0; i < n; ++i) mean += before[i] - after[i];
  mean /= static_cast<double>(n);
  double ss = 0;
  for (size_t i = 0; i < n; ++i) ss += (before[i] - after[i] - mean) * (before[i] - after[i] - mean);
  const double sd = std::sqrt(ss / static_cast<double>(n - 1));
  return sd / std::sqrt(static_cast<double>(n)) * n_eff;
}

std::string MdlDecision::to_string() const {
  return fmt::format(
      "N_eff {:.0f}, bits/token {:.4f} -> {:.4f}, G {:.1f} bits (SE {:.1f}, z {:.1f}), c_blk {:.1f} "
      "bits, delta {:.1f}, J {:.1f} -> {:.1f}: {}",
      n_eff, bits_before, bits_after, gain_bits, se_bits, z, cost_bits, delta_bits, j_before, j_after,
      accepted ? "accepted" : "rejected");
}

namespace {

MdlDecision decide(double bits_before, double bits_after, double n_eff, int64_t p_blk, int64_t k_max, double delta,
                   double costs_so_far, bool adding, double se_bits, double z, double naming_bits = 0) {
  if (!std::isfinite(bits_before) || !std::isfinite(bits_after) || !(n_eff >= 0)) {
    throw Error(
        fmt::format("recruitment: non-finite measurement (bits {} -> {}, N_eff {}); the trial diverged "
                    "(lower train.lr or recruitment.n_try)",
                    bits_before, bits_after, n_eff));
  }
  MdlDecision d;
  d.n_eff = n_eff;
  d.bits_before = bits_before;
  d.bits_after = bits_after;
  d.cost_bits = mdl_block_cost_bits(p_blk, n_eff, k_max);
  d.delta_bits = delta;
  d.se_bits = se_bits;
  d.z = z;
  // Adding: the block saves (before - after) per token. Pruning: removing it saves c_blk
  // and costs (without - with) per token, so its "gain" is the bits it would still save.
  d.naming_bits = naming_bits;
  d.gain_bits = (bits_before - bits_after) * n_eff - naming_bits;
  const double cl_with = (adding ? bits_after : bits_before) * n_eff + naming_bits;
  const double cl_without = (adding ? bits_before : bits_after) * n_eff;
  const double costs_without = costs_so_far - (adding ? 0.0 : d.cost_bits);
  const double j_with = cl_with + costs_without + d.cost_bits, j_without = cl_without + costs_without;
  d.j_before = adding ? j_without : j_with;
  if (adding) {
    d.accepted = d.gain_bits - z * se_bits - d.cost_bits > delta;
  } else {
    d.gain_bits = (bits_after - bits_before) * n_eff;  // bits the block saves by being there
    d.accepted = d.gain_bits + z * se_bits < d.cost_bits - delta;
  }
  d.j_after = d.accepted ? (adding ? j_with : j_without) : d.j_before;
  // NOTE(J invariant): every accepted change lowers J = CL + Σ costs by at least δ;
  // checked from the totals, independently of the comparison that accepted it.
  if (d.accepted && !(d.j_before - d.j_after >= delta - 1e-9 * std::max(1.0, std::fabs(d.j_before)))) {
    throw Error(fmt::format("recruitment: an accepted change lowers J by only {} bits (< delta {}): {}",
                            d.j_before - d.j_after, delta, d.to_string()));
  }
  return d;
}

}  // namespace

MdlDecision mdl_decide_recruit(double bits_before, double bits_after, double n_eff, int64_t p_blk, int64_t k_max,
                               double delta, double costs_so_far, double se_bits, double z) {
  return decide(bits_before, bits_after, n_eff, p_blk, k_max, delta, costs_so_far, true, se_bits, z);
}

MdlDecision mdl_decide_spawn(double bits_parent, double bits_specialist, double n_d, double documents,
                             int64_t llms_after, int64_t p_llm, int64_t max_llms, double delta, double costs_so_far,
                             double se_bits, double z) {
  const double naming = std::max(0.0, documents) * std::log2(static_cast<double>(std::max<int64_t>(llms_after, 1)));
  return decide(bits_parent, bits_specialist, n_d, p_llm, max_llms, delta, costs_so_far, true, se_bits, z, naming);
}

MdlDecision mdl_decide_prune(double bits_with, double bits_without, double n_eff, int64_t p_blk, int64_t k_max,
                             double delta, double costs_so_far, double se_bits, double z) {
  return decide(bits_with, bits_without, n_eff, p_blk, k_max, delta, costs_so_far, false, se_bits, z);
}

}  // namespace localist
