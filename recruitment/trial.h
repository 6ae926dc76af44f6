// SPDX-License-Identifier: Apache-2.0
// trial.h: the reusable trial of recruitment (DESIGN.md §1 M10, and M11's LLM trials):
// a bit-exact snapshot of a model's parameters and buffers, training a chosen subset of
// them (whole tensors or views of them) on chosen windows by an optimizer of its own,
// and held-out bits per window. The windows are split over the data-parallel ranks;
// under block parallelism each replica's ranks compute them together on their shards
// (as training does), so no rank holds more than its share, and a block's trained rows
// exist on its owner only. Limits: one trial at a time per group.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.h"
#include "data/batch_reader.h"
#include "model/forward_pass.h"
#include "model/localist_model.h"
#include "model/rules.h"

namespace localist {

// The model's buffers and the given parameter tensors (or views of them) as they were at
// construction; restore() puts them back bit for bit. Given what a trial can change (the
// tensors it trains: TrainedTensor::changed), it costs a copy of those alone, not of
// the model.
class ParameterSnapshot {
 public:
  ParameterSnapshot(LocalistModel& model, std::vector<at::Tensor> tensors);
  void restore() const;

 private:
  std::vector<at::Tensor> tensors_, saved_;
};

// What a trial trains of one parameter: the whole tensor, or the views `part` cuts of it
// (the rest of the tensor gets no gradient, so it stays bit for bit). A block tensor's views are
// held by the block's owner alone (block parallel): their gradients are summed over
// the ranks that hold the same blocks; everything else over all the group's ranks.
struct TrainedTensor {
  at::Tensor param;
  std::function<std::vector<at::Tensor>(const at::Tensor&)> part;  // null: the whole tensor
  bool block = false;
  // What a trial of it can change: the whole parameter, or its part's views.
  std::vector<at::Tensor> changed() const { return part ? part(param) : std::vector<at::Tensor>{param}; }
};

// Bits of held-out windows: per window (bits per token, every window, on every rank) and
// their total.
struct HeldoutBits {
  double mean = 0;  // bits per token over all windows' tokens
  double tokens = 0;
  std::vector<double> window_bits;  // per window: mean bits per token
};

// Block parallelism as a trial sees it (DESIGN.md §2). Without a shard the windows are
// split over all the group's ranks.
struct TrialSharding {
  std::function<const BlockShard*()> shard;   // this rank's shard now (null function or result: none)
  std::shared_ptr<Communicator> same_blocks;  // the ranks holding the same blocks (the data-parallel ones)
  int dp_rank = 0, dp_size = 1;               // windows are split over these
};

struct TrialSetup {
  LocalistModel* model = nullptr;
  const BatchReader* reader = nullptr;
  std::vector<std::string> source_domains;  // per training source, "" when untagged
  std::shared_ptr<Communicator> ranks;      // the group's ranks
  TrialSharding sharding;
  const std::vector<std::string>* token_texts = nullptr;
  at::Device device = at::kCPU;
  int64_t pad_id = -100;
  int64_t micro_batch = 8;
  bool checkpoint_activations = false;  // train.activation_checkpointing
  int64_t batch = 16;                   // windows per trial step
  uint64_t seed = 0;
  double beta1 = 0.9, beta2 = 0.95;
};

class Trial {
 public:
  explicit Trial(TrialSetup setup);
  // Scores this rank's share of `refs` in eval mode, micro-batch by micro-batch: calls
  // visit(index of the first window, per-token bits (rows, n) of positions [t0, t0 + n)
  // on the CPU, t0, the forward result). Each (window, position) is visited on exactly
  // one rank of the group, so sums over the group are the totals. routing: keep each
  // layer's routing in the result (ForwardOptions::routing_trace).
  using Visit = std::function<void(int64_t first, const at::Tensor& bits, int64_t t0, const ForwardResult&)>;
  void score(const std::vector<SampleRef>& refs, const std::vector<double>& dial, bool routing, const RuleSet& rules,
             const Visit& visit) const;
  // Collective over the ranks.
  HeldoutBits heldout_bits(const std::vector<SampleRef>& refs, const std::vector<double>& dial,
                           const RuleSet& rules) const;
  // One update's gradients of `trained` on the windows `refs` (each rank its slice, in
  // micro-batches; dropout streams fixed by (seed, step, update, window)), summed over the
  // ranks as the update needs them, left in .grad (zero or undefined before). Collective.
  void gradients(int64_t step, int64_t update, const std::vector<TrainedTensor>& trained,
                 const std::vector<SampleRef>& refs, const RuleSet& rules, const std::vector<double>& dial) const;
  // `steps` updates of `trained` (AdamW at `lr`, no weight decay) on `pool`'s windows in
  // turn, `batch` per update; dropout streams fixed by (seed, step, update, window).
  // Collective; leaves every gradient zero and the model in train mode.
  void train(int64_t step, int64_t steps, const std::vector<TrainedTensor>& trained, const std::vector<SampleRef>& pool,
             const RuleSet& rules, const std::vector<double>& dial, double lr) const;

 private:
  PassSpec pass(const RuleSet& rules) const;
  const BlockShard* shard() const { return s_.sharding.shard ? s_.sharding.shard() : nullptr; }
  std::pair<int64_t, int64_t> my_windows(int64_t n) const;  // this rank's [begin, end) of n windows
  std::vector<std::string> domains_of(const std::vector<SampleRef>& refs, size_t begin, size_t end) const;
  void sum_trained_gradients(int64_t step, const std::vector<TrainedTensor>& trained) const;
  TrialSetup s_;
};

}  // namespace localist
