// SPDX-License-Identifier: Apache-2.0
// pool_spawn.h: hierarchical recruitment (DESIGN.md §1 M11 steps 1-5). Every
// pool.interval steps the coordinator looks for a tagged domain of main's whose block
// recruitment (M10) has saturated, takes the one main codes worst, and runs a trial on
// main's ranks: a candidate specialist branched from main trains pool.n_try steps on
// that domain alone (its own stream) while a control copy of main trains main's own
// next n_try steps (the very batches main will train on). Both score held-out windows of
// the domain; the two-part code in bits (recruitment/mdl, shared with M10) decides. An
// accepted specialist joins the pool with its trial state and owns the domain from this
// step; a rejected one is discarded and nothing else changes.
// Limits: block_parallel 1. The trial runs at the step boundary: the other ranks wait
// for the decision (within distributed.timeout_s). The control does not replay main's
// own M10 rounds that fall inside the n_try steps.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/sampler.h"
#include "pool/pool.h"
#include "recruitment/trial.h"
#include "trainer/train_config.h"

namespace localist {

// The name a specialist spawned for `domain` gets: spec-<domain>, numbered when taken.
std::string pool_specialist_name(const PoolConfig& pool, const std::string& domain);

// Where spawn rounds spent this rank's time (seconds): choosing candidates and deciding,
// the trials' training steps (parent's control and candidate), admitting an accepted
// specialist (re-plan, state moves, rebuilt groups); on a rank that does not train main,
// waiting for main's decision (the trial's cost to the rest of the pool); whole rounds.
struct SpawnTimes {
  double decision_s = 0, trial_s = 0, admit_s = 0, wait_s = 0, round_s = 0;
  int64_t rounds = 0, trials = 0;
};

class PoolSpawner {
 public:
  PoolSpawner(Pool& pool, const TrainConfig& train);
  // pool.recruit on, a positive multiple of pool.interval, room in the pool (max_llms),
  // and n_try steps left in the run.
  bool due(int64_t step) const;
  // Collective over the world at the boundary before `step` (after the M10 rounds, before
  // the step). Returns the round's record (event "pool_recruitment") on every rank; an
  // accepted spawn has already joined the pool.
  nlohmann::json round(int64_t step);
  const SpawnTimes& times() const { return times_; }

 private:
  // On main's ranks (collective over them): the trigger, the trial and the criterion; the
  // trial's specialist is handed back in `tried` (null when none ran).
  nlohmann::json decide_on_main(int64_t step, ModelGroup& main, std::unique_ptr<ModelGroup>* tried);
  // Step 1, the trigger: the eligible domain main codes worst (domain empty when none);
  // every domain considered goes into rec["candidates"].
  struct Candidate {
    std::string domain;
    std::vector<int32_t> srcs;    // main's sources of the domain
    std::vector<SampleRef> held;  // its held-out windows
    HeldoutBits bits;             // main's bits on them at the round's start
  };
  Candidate pick_candidate(int64_t step, ModelGroup& main, const std::vector<double>& dial, nlohmann::json& rec) const;
  // Step 2, the trial: the candidate specialist on its own stream of the domain, a control
  // copy of main on main's; both scored on the candidate's held-out windows.
  struct SpawnTrial {
    std::string name;
    double share = 0;          // the domain's share of the pool's training tokens
    int64_t context = 0;       // main's window length: tokens per document
    HeldoutBits parent, spec;  // b_p and b_s
    std::unique_ptr<ModelGroup> specialist;
  };
  SpawnTrial run_trial(int64_t step, ModelGroup& main, const Candidate& c, const std::vector<double>& dial);
  // Step 3, the criterion in bits: the decision and its numbers into rec.
  void decide(int64_t step, const Candidate& c, const SpawnTrial& t, nlohmann::json& rec) const;
  std::vector<SampleRef> heldout_windows(const ModelGroup& main, int64_t step, const std::vector<int32_t>& srcs) const;
  double domain_share(const ModelGroup& main, int64_t step, const std::vector<int32_t>& srcs) const;
  std::string new_name(const std::string& domain) const;

  Pool& pool_;
  TrainConfig train_;
  SpawnTimes times_;
};

// Why block recruitment (M10) for `domain` inside a group counts as saturated (M11 step 1),
// "" when it does not: recruitment off, a recruited block for the domain, no free slot,
// or the last `rejections` decisions on the domain's candidate rejected. `log` is the
// recruiter's decision log (JSON lines).
std::string spawn_saturation(bool recruitment_on, const std::string& log, const std::string& domain, bool has_route,
                             bool free_slot, int64_t rejections);

}  // namespace localist
