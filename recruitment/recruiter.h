// SPDX-License-Identifier: Apache-2.0
// recruiter.h: block recruitment inside one model group (DESIGN.md §1 M10). Every rank
// of the group takes part in each step of a round, in the order the group runs them:
// begin_round (probe windows scored, statistics summed over the ranks, candidates),
// prune (the symmetric rule), try_candidate (the best candidate's control and real
// trial on the shared trial machinery, recruitment/trial.h, and the MDL decision in bits:
// a rejected block leaves every parameter and buffer bit-identical) and commit (state,
// fresh moments for a kept block, the decision log). The recruiter changes the model's
// active blocks but never the block map: the caller places a switched block and gives
// commit its owner. A block kept for a tagged domain receives that domain's tokens by a
// route rule from its trial on (domain_routes(); docs/recruitment.md, routing).
// Under block parallelism probes and trials run on the shards (recruitment/trial.h) and
// a trial's new block lives on its planned owner only. Limits: gains are measured on all
// tokens of held-out candidate windows (see docs/recruitment.md).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "data/batch_reader.h"
#include "model/localist_model.h"
#include "model/rules.h"
#include "parallel/block_slots.h"
#include "recruitment/candidates.h"
#include "recruitment/mdl.h"
#include "recruitment/recruitment_config.h"
#include "recruitment/trial.h"

namespace localist {

struct RecruiterSetup {
  RecruitmentConfig config;
  // What probes and trials run on: the model, data, the group's ranks and (block
  // parallel) its shards, seeds and batch sizes (trial.batch: the run's global batch).
  TrialSetup trial;
  MomentsOf moments;  // the group optimizer's moments: a kept block's are reset
  // The run's rules file (reloaded by the group; may be null): probes and trials apply
  // the rules and the domain routes as training does.
  const RuleSet* rules = nullptr;
  int64_t total_steps = 0;
  // Block parallel (null without): gives an inactive slot a row on the rank the planner
  // will place it on (every rank calls it; only that rank holds the row) and returns
  // that rank; drop_trial_block takes the row back (a rejected trial).
  std::function<int32_t(int64_t slot)> hold_trial_block;
  std::function<void(int64_t slot)> drop_trial_block;
};

// Where a round's time went (seconds, this rank).
struct RecruiterTimes {
  double statistics = 0, decision = 0, trial = 0, restore = 0;
};

// The outcome of try_candidate: the block slot switched on (accepted) or restored.
struct BlockDecision {
  bool tried = false;  // a trial ran (else the record says why not)
  int64_t slot = -1;
  MdlDecision mdl;                  // the criterion's numbers; mdl.accepted: the slot is on and stays so once committed
  std::vector<DomainRoute> routes;  // the domain routes if the block is kept
  std::string label;                // the candidate's
  double bits_start = 0, control_bits = 0, held_tokens = 0;
  int64_t candidate_tokens = 0, candidate_windows = 0;
  std::string route_domain;
  bool accepted() const { return tried && mdl.accepted; }
};

class Recruiter {
 public:
  explicit Recruiter(RecruiterSetup setup);
  ~Recruiter();
  bool due(int64_t step) const;
  // Accounting horizon in steps: recruitment.horizon_steps, else the rest of the run (at least one interval).
  int64_t horizon(int64_t step) const;

  // The steps of a round (collective over the group's ranks, in this order). The
  // round's record (event "recruitment") is filled as they go.
  nlohmann::json begin_round(int64_t step, const std::vector<double>& dial);
  // Returns the slot switched off (the caller places the change), or -1.
  int64_t prune(int64_t step, const std::vector<double>& dial, nlohmann::json& record);
  BlockDecision try_candidate(int64_t step, const std::vector<double>& dial, double lr, nlohmann::json& record);
  // Keeps an accepted block (its owner under the caller's new map; 0 without block
  // parallelism) and logs the decision; ends the round.
  void commit(int64_t step, const BlockDecision& d, int32_t owner, nlohmann::json& record);

  // What a checkpoint must hold to make the same later decisions.
  nlohmann::json state() const;
  void restore(const nlohmann::json& state, const std::string& log);
  // Decisions so far (accepted, rejected, pruned), one JSON object per line.
  const std::string& log() const { return log_; }
  // Domains that own a recruited block (recruitment.domain_routes): their tokens route there.
  const std::vector<DomainRoute>& domain_routes() const { return domain_routes_; }
  // The domain a training window is shown with at `step`: its source's, or "" when the
  // domain has a route and the window is among recruitment.untagged_fraction of them.
  std::string training_domain(int64_t step, int32_t source, int64_t start) const;
  int64_t map_epoch() const { return map_epoch_; }
  void restore_epoch(int64_t epoch) { map_epoch_ = epoch; }  // the resumed block map's
  const RecruiterTimes& times() const { return times_; }

 private:
  struct Probe;
  struct CandidateData;
  void probe(int64_t step, const std::vector<double>& dial);
  bool owns_block(int32_t domain) const;
  int64_t free_slot() const;
  std::vector<DomainRoute> routes_without(int64_t slot) const;
  RuleSet rules_with(const std::vector<DomainRoute>& routes) const;  // the run's rules with `routes` in front
  CandidateData candidate_data(int64_t step, const Candidate& c) const;
  std::vector<TrainedTensor> trained_tensors(int64_t slot) const;  // the router, and slot's views (slot >= 0)
  void switch_on_fresh(int64_t step, int64_t slot, const Candidate& c);
  double measure(const std::vector<SampleRef>& refs, const std::vector<double>& dial, const RuleSet& rules,
                 double* tokens = nullptr) const;

  RecruiterSetup s_;
  Trial trial_;
  RunningMedian median_;
  std::unique_ptr<Probe> probe_;       // the current round's
  std::vector<Candidate> candidates_;  // the current round's, best first
  double costs_bits_ = 0;              // Σ c_blk of the blocks recruited so far (J's model part)
  int64_t map_epoch_ = 0;
  std::vector<int64_t> recruited_;  // slots switched on by recruitment (the ones pruning may remove)
  std::vector<DomainRoute> domain_routes_;
  std::string log_;
  std::vector<std::string> domain_names_;
  std::vector<int32_t> source_domain_;  // per training source: index into domain_names_, -1 untagged
  RecruiterTimes times_;
};

// The domain routes in a checkpoint's recruitment state (`state.recruitment`), for the
// commands that load a trained model; empty when there are none. Malformed entries or a
// slot outside [0, k_max) are a one-line Error.
std::vector<DomainRoute> recruited_domain_routes(const nlohmann::json& recruitment_state, int64_t k_max);

}  // namespace localist
