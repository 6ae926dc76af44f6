// SPDX-License-Identifier: Apache-2.0
// zero_optimizer.h: ZeRO stage 1 (`distributed.zero: 1`, DESIGN.md §2): the AdamW
// moments of parameters sharded over a group of ranks that all hold them. The
// parameters are laid end to end in one flat vector, padded to a multiple of the group
// size; rank r owns the r-th equal chunk. A step reduce-scatters the flat gradient (each
// rank receives the sum of its chunk), updates its chunk with exactly torch's AdamW
// arithmetic, and all-gathers the updated chunks into every rank's parameters.
// A model group uses two: the replicated parameters over all its ranks, and the split
// tensors (a block-parallel rank's share) over the ranks holding the same share.
// Limits: no overlap with backward (one reduce-scatter after it).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "parallel/optimizer_state.h"

namespace localist {

// A rank's chunk of a flat vector of `total` elements sharded over `ranks` (the vector is
// padded to chunk × ranks). The planner (run/job_plan.h) counts with it too.
inline int64_t zero_chunk_numel(int64_t total, int64_t ranks) { return (total + ranks - 1) / ranks; }

// What `distributed.zero` shards for a group of `ranks` ranks, `dp` of them data parallel:
// the replicated parameters' moments over the group, and (with several data-parallel
// ranks) the split tensors' over those. ModelGroup builds its optimizers and gradient sync
// by it; the planner (run/job_plan.h) counts by it.
struct ZeroSharding {
  bool replicated = false, split = false;
  ZeroSharding(int64_t zero, int64_t ranks, int64_t dp)
      : replicated(zero == 1 && ranks > 1), split(replicated && dp > 1) {}
  bool in_torch_adamw(bool is_split) const { return !replicated || (is_split && !split); }
  // The gradient sync over the data-parallel ranks carries what ZeRO does not reduce-scatter.
  bool synced(bool is_split, int64_t dp) const { return dp > 1 && !split && (!replicated || is_split); }
};

class ZeroAdamW : public OptimizerState {
 public:
  struct Options {
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  };
  // `weight_decay[i]` applies to `params[i]`; params must be contiguous and on one device.
  ZeroAdamW(std::shared_ptr<Communicator> dp, std::vector<at::Tensor> params, std::vector<double> weight_decay,
            Options options);

  // After backward (collective): sums the gradients over the group into this rank's
  // chunk. A parameter with no gradient on every rank is not updated this step (as
  // torch's AdamW skips it); one with a gradient on some ranks counts zeros elsewhere.
  void reduce_gradients(const std::string& what);
  // This rank's share of the squared gradient norm (its chunk only: add over the group).
  double chunk_grad_square_sum() const;
  void scale_gradients(double factor);
  // Updates this rank's chunk at `lr` and all-gathers the parameters (collective).
  void step(double lr, const std::string& what);

  // Every parameter's whole state, gathered from the group (collective; for checkpoints
  // and moving an LLM to other ranks). Index i belongs to params()[i].
  std::vector<FullMoments> gather_state(const std::string& what) const;
  // Installs whole states (same order as params(); undefined: no state yet), keeping
  // this rank's chunk only. Not collective.
  void load_state(const std::vector<FullMoments>& state);
  // The index of `p` in params(), or -1.
  int64_t index_of(const at::Tensor& p) const;
  // OptimizerState: the checkpoint's view (keeps: index_of >= 0; load_moments: load_state).
  bool keeps(const at::Tensor& p) const override { return index_of(p) >= 0; }
  void load_moments(const std::map<const void*, FullMoments>& state) override;

  const std::vector<at::Tensor>& params() const { return params_; }
  int64_t chunk_numel() const { return chunk_; }
  int64_t state_bytes() const;  // this rank's moments
  // Its flat gradient buffers (the whole flat vector and this rank's chunk).
  int64_t buffer_bytes() const {
    return flat_grad_.numel() * static_cast<int64_t>(flat_grad_.element_size()) +
           chunk_grad_.numel() * static_cast<int64_t>(chunk_grad_.element_size());
  }

 private:
  // A parameter's piece inside this rank's chunk.
  struct Segment {
    size_t param;
    int64_t param_offset, chunk_offset, length;
  };
  std::shared_ptr<Communicator> dp_;
  std::vector<at::Tensor> params_;
  std::vector<double> weight_decay_;
  Options options_;
  std::vector<int64_t> offset_;  // each parameter's start in the flat vector
  int64_t total_ = 0, chunk_ = 0;
  std::vector<Segment> segments_;
  at::Tensor flat_grad_, chunk_grad_, exp_avg_, exp_avg_sq_;  // flat on the communicator's device
  std::vector<int64_t> steps_;                                // per parameter, the same on every rank
  std::vector<uint8_t> updated_;                              // per parameter, in this step
};

}  // namespace localist
