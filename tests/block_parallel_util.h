// SPDX-License-Identifier: Apache-2.0
// block_parallel_util.h: test helpers shared by the block-parallel tests (in-process and
// under mpirun): one slot's parameters and Adam moments of a layer, flat (zeros on a rank
// that does not hold the slot), one sharded training step of a small model, and the
// block-move check that runs against every Communicator.
#pragma once
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/adamw.h>

#include <memory>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "comm/communicator.h"
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

// The block-move check run against every Communicator (the MPI backend under mpirun, the
// in-process double): a new block map moves each moved block's parameters and Adam
// moments from the old owner to the new one bit for bit; the old owner no longer holds
// it, the mover reports bytes sent, and the sharded model still computes what the whole
// (assembled) model computes.
struct BlockMoveCase {
  int64_t heads_per_block = 1, context = 8, vocab = 20;
};

inline void expect_block_moves_bit_for_bit(const std::shared_ptr<Communicator>& world, const BlockMoveCase& k) {
  ModelConfig c;
  c.d_model = 16, c.n_layers = 2, c.context = k.context, c.heads_per_block = k.heads_per_block, c.head_dim = 4;
  c.k_max = 5, c.k_initial = 5, c.anchor_dim = 4, c.ffn_mult = 2;
  LocalistModel m(c, k.vocab, 11);
  BlockParallel bp(world, m, block_map_initial(std::vector<uint8_t>(c.k_max, 1), world->size()));
  torch::optim::AdamW opt(m.parameters(), torch::optim::AdamWOptions(1e-2));
  const MomentsOf moments = adamw_moments(opt);
  auto gen = at::detail::createCPUGenerator(5);
  const auto x = at::randint(k.vocab, {2, k.context}, gen, at::kLong),
             y = at::randint(k.vocab, {2, k.context}, gen, at::kLong);
  ForwardOptions o;
  o.dial = {0.5, 0.5};
  for (int step = 0; step < 2; ++step) sharded_train_step(m, bp, opt, *world, x, y, o.dial);
  const int64_t nh = c.heads_per_block * c.head_dim, per = 3 * (3 * nh * c.d_model + 3 * nh + c.d_model * nh);
  auto slot_state = [&](const LocalistLayer& l, int64_t s) { return block_slot_state(l, c, s, moments); };
  const BlockMap old_map = bp.map();
  std::vector<at::Tensor> before;  // per layer and slot, gathered over ranks
  for (auto& l : m.layers) {
    for (int64_t s = 0; s < c.k_max; ++s) before.push_back(world->all_gather(slot_state(*l, s), "test slot state"));
  }
  BlockMap next = old_map;
  ++next.epoch;
  for (auto& w : next.owner) w = (w + 1) % world->size();
  const int64_t sent = bp.apply(next, moments);
  EXPECT_GT(sent, 0);
  EXPECT_EQ(bp.map(), next);
  EXPECT_EQ(bp.shard().owned_slots, next.owned_by(world->rank()));
  size_t i = 0;
  for (auto& l : m.layers) {
    for (int64_t s = 0; s < c.k_max; ++s, ++i) {
      const bool mine = next.owner[s] == world->rank();
      EXPECT_EQ(l->slot_row[s] >= 0, mine) << "slot " << s << " on rank " << world->rank();
      if (!mine) continue;
      const auto now = slot_state(*l, s);
      EXPECT_TRUE(at::equal(now, before[i][old_map.owner[s]])) << "slot " << s;
      EXPECT_GT(now.narrow(0, per / 3, per / 3).abs().sum().item<double>(), 0.0);  // moments exist: not vacuous
    }
  }
  // The sharded model under the new map still equals the assembled whole model.
  o.shard = &bp.shard();
  const auto sharded = m.forward(x, o).logits.detach();
  bp.assemble();
  ForwardOptions whole;
  whole.dial = o.dial;
  const auto ref_logits = m.forward(x, whole).logits.detach();
  bp.release();
  const auto [t0, t1] = bp.shard().seq_range(k.context);
  EXPECT_LE((sharded - ref_logits.narrow(1, t0, t1 - t0)).abs().max().item<double>(), 1e-5);
}

}  // namespace localist::test
