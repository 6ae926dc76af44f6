// SPDX-License-Identifier: Apache-2.0
// block_parallel_util.h: test helpers shared by the block-parallel tests (in-process and
// under mpirun): one slot's parameters and Adam moments of a layer, flat (zeros on a rank
// that does not hold the slot), and one sharded training step of a small model.
#pragma once
#include <ATen/ATen.h>
#include <torch/optim/adamw.h>

#include <vector>

#include "model/localist_model.h"
#include "parallel/block_parallel.h"
#include "parallel/block_slots.h"

namespace localist::test {

inline at::Tensor block_slot_state(const LocalistLayer& l, const ModelConfig& c, int64_t slot,
                                   const MomentsOf& moments) {
  const int64_t n = c.heads_per_block * c.head_dim, per = 3 * (3 * n * c.d_model + 3 * n + c.d_model * n);
  if (l.slot_row[slot] < 0) return at::zeros({per});
  std::vector<at::Tensor> flat;
  for (const auto& v : block_slot_params(l, c, slot)) flat.push_back(v.detach().reshape({-1}));
  for (const auto& v : block_slot_moments(l, c, slot, moments)) flat.push_back(v.reshape({-1}));
  return at::cat(flat);
}

// One training step of `m` sharded by `bp` on tokens x -> targets y (B, T): this rank's
// positions' share of the mean cross-entropy (sequence parallel), the replicated
// parameters' gradients summed over `group` (each rank holds its positions' part).
inline void sharded_train_step(LocalistModel& m, BlockParallel& bp, torch::optim::AdamW& opt, Communicator& group,
                               const at::Tensor& x, const at::Tensor& y, const std::vector<double>& dial) {
  opt.zero_grad();
  ForwardOptions o;
  o.dial = dial;
  o.shard = &bp.shard();
  const auto r = m.forward(x, o);
  const auto [t0, t1] = bp.shard().seq_range(x.size(1));
  (at::cross_entropy_loss(r.logits.reshape({-1, r.logits.size(-1)}), y.narrow(1, t0, t1 - t0).reshape({-1}), {},
                          at::Reduction::Sum) /
   static_cast<double>(y.numel()))
      .backward();
  for (auto& p : m.parameters()) {
    if (bp.is_split_param(p) || !p.grad().defined()) continue;
    auto g = p.grad();
    group.all_reduce(g, ReduceOp::kSum, "replicated gradient");
  }
  opt.step();
}

}  // namespace localist::test
