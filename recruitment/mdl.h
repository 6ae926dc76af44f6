// SPDX-License-Identifier: Apache-2.0
// mdl.h: the penalized-likelihood (minimum description length) criterion of block
// recruitment and pruning, in bits (DESIGN.md §1 M10). A block pays for itself when the
// bits it saves on the data it is expected to code over the accounting horizon exceed
// the bits needed to describe it: c_blk = (p_blk / 2)·log2 N_eff + log2 K_max. Pure
// arithmetic on measured numbers; the trial that measures them is trainer's job.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace localist {

// Parameters one semantic block adds: in every layer its q, k, v rows with biases and
// its columns of the output projection (anchors are fixed codes, not parameters).
int64_t mdl_block_parameters(const ModelConfig& c);

// c_blk in bits: (p_blk / 2)·log2 N_eff + log2 K_max (naming which of K_max slots).
double mdl_block_cost_bits(int64_t p_blk, double n_eff, int64_t k_max);

// N_eff: candidate tokens expected over the horizon, from the candidate's share of
// the probed tokens and the tokens trained over the horizon.
double mdl_effective_tokens(double candidate_share, int64_t horizon_steps, int64_t tokens_per_step);

// SE(G): the standard error of the mean of the per-window paired differences of held-out
// bits per token (before − after, the windows in the same order), scaled by N_eff like
// G. 0 with fewer than 2 windows. Throws Error when the two lists differ in length.
double mdl_gain_standard_error(const std::vector<double>& before, const std::vector<double>& after, double n_eff);

struct MdlDecision {
  double n_eff = 0;                        // tokens the block is accounted over
  double bits_before = 0, bits_after = 0;  // held-out candidate bits per token, before / after the trial
  double naming_bits = 0;                  // R_d: naming each document's LLM (a spawn; 0 for a block)
  double gain_bits = 0;                    // G = (bits_before - bits_after) · N_eff − R_d
  double cost_bits = 0;                    // c_blk
  double delta_bits = 0;                   // δ_blk
  double se_bits = 0, z = 0;  // SE(G) and the confidence multiplier: the decision uses G − z·SE (G + z·SE to prune)
  double j_before = 0, j_after = 0;  // J = CL(candidate data over the horizon) + Σ block costs
  bool accepted = false;             // G − z·SE − c_blk > δ
  std::string to_string() const;
};

// Recruitment: accept iff G − z·SE(G) − c_blk > δ (the gain's lower confidence bound
// pays; DESIGN.md M10 step 5). `costs_so_far` is Σ c of the blocks already recruited
// (the J totals include it). Throws Error if an accepted change would not lower J by
// at least δ (a bug in the bookkeeping, never a data condition).
MdlDecision mdl_decide_recruit(double bits_before, double bits_after, double n_eff, int64_t p_blk, int64_t k_max,
                               double delta, double costs_so_far, double se_bits = 0, double z = 0);

// A spawn (M11 step 3): G_LLM = (b_p − b_s)·N_d − R_d with R_d = documents·log2(llms after),
// c_LLM = (p_LLM / 2)·log2 N_d + log2 max_llms (mdl_block_cost_bits with K_max = max_llms);
// accept iff G − z·SE − c_LLM > δ. J = CL of d's tokens + naming + Σ LLM costs, checked as
// for a block. bits_before = parent, bits_after = specialist.
MdlDecision mdl_decide_spawn(double bits_parent, double bits_specialist, double n_d, double documents,
                             int64_t llms_after, int64_t p_llm, int64_t max_llms, double delta, double costs_so_far,
                             double se_bits, double z);

// Pruning, the symmetric rule: remove a block when coding its data without it costs
// fewer extra bits than describing it, even at the upper confidence bound of what it saves:
// (bits_without - bits_with)·N_eff + z·SE < c_blk - δ. bits_before = with the block,
// bits_after = without; accepted = prune.
MdlDecision mdl_decide_prune(double bits_with, double bits_without, double n_eff, int64_t p_blk, int64_t k_max,
                             double delta, double costs_so_far, double se_bits = 0, double z = 0);

}  // namespace localist
