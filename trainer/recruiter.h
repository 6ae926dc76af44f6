// recruiter.h: block recruitment rounds during training (DESIGN.md §1 M10), run by every
// rank at the same step: probe windows are scored and the statistics summed over the
// ranks (so all hold the same numbers); candidates and the MDL decision are computed
// identically everywhere (recruitment/); the best candidate gets a trial — a free slot
// switched on, its output columns zeroed, only it and the router trained for n_try steps
// on candidate data by a separate optimizer — and is kept iff it pays in bits, else every
// parameter and buffer is restored bit for bit (the main optimizer is never touched).
// A block kept for a tagged domain receives that domain's tokens by a route rule from its
// trial on (domain_routes(); docs/recruitment.md, routing). Limits: a trial computes every
// block on every rank (not sharded); gains are measured on all tokens of held-out
// candidate windows (see docs/recruitment.md).
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
#include "recruitment/candidates.h"
#include "recruitment/recruitment_config.h"

namespace torch::optim {
class AdamW;
}

namespace localist {

struct RecruiterSetup {
  RecruitmentConfig config;
  LocalistModel* model = nullptr;
  torch::optim::AdamW* optimizer = nullptr;  // the main optimizer: only the new slot's moments are reset
  const BatchReader* reader = nullptr;
  // Every rank of the run. Probes and trials run the whole model on every rank (block
  // storage is replicated), each rank on its slice of the windows, as data parallelism.
  std::shared_ptr<Communicator> world;
  // Called on every rank right after the active blocks changed (a block accepted or
  // pruned): applies the next block map and returns the slot's owner (-1 when inactive).
  std::function<int32_t(int64_t slot)> place;
  std::vector<std::string> source_domains;  // per training source, "" when untagged
  // The run's rules file (reloaded by the trainer; may be null) and the vocabulary's bytes:
  // probes and trials apply the rules and the domain routes as training does.
  const RuleSet* rules = nullptr;
  const std::vector<std::string>* token_texts = nullptr;
  int64_t pad_id = -100;
  uint64_t seed = 0;
  int64_t global_batch = 16, micro_batch = 8, total_steps = 0;
  double beta1 = 0.9, beta2 = 0.95;
  at::Device device = at::kCPU;
};

// Where a round's time went (seconds, this rank).
struct RecruiterTimes {
  double statistics = 0, decision = 0, trial = 0, restore = 0;
};

class Recruiter {
 public:
  explicit Recruiter(RecruiterSetup setup);
  bool due(int64_t step) const;
  // Accounting horizon in steps: recruitment.horizon_steps, else the rest of the run (at least one interval).
  int64_t horizon(int64_t step) const;
  // Collective over the world. Returns the round's record (event "recruitment"): the
  // decision with its numbers, or why there was none. Leaves the model in train mode.
  nlohmann::json round(int64_t step, const std::vector<double>& dial, double lr);

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
  Probe probe(int64_t step, const std::vector<double>& dial);
  // Scores this rank's share of `refs` in eval mode, micro-batch by micro-batch: calls
  // visit(index of the first window, per-token bits (rows, T) on the CPU, the forward result).
  void score(const std::vector<SampleRef>& refs, const std::vector<double>& dial, bool trace, const RuleSet& rules,
             const std::function<void(int64_t, const at::Tensor&, const ForwardResult&)>& visit);
  bool owns_block(int32_t domain) const;
  std::vector<DomainRoute> routes_without(int64_t slot) const;
  // The run's rules with `routes` in front.
  RuleSet rules_with(const std::vector<DomainRoute>& routes) const;
  // Rule masks of rows `refs` (their sources' domains); empty when there are no rules.
  RuleMasks masks_of(const RuleSet& rules, const std::vector<SampleRef>& refs, const at::Tensor& inputs) const;
  nlohmann::json prune(int64_t step, const Probe& p, const std::vector<double>& dial);
  double heldout_bits(const std::vector<SampleRef>& refs, const std::vector<double>& dial, const RuleSet& rules,
                      double* count);
  void train_trial(int64_t step, int64_t slot, const std::vector<SampleRef>& pool, const RuleSet& rules,
                   const std::vector<double>& dial, double lr);

  RecruiterSetup s_;
  RunningMedian median_;
  double costs_bits_ = 0;  // Σ c_blk of the blocks recruited so far (J's model part)
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
