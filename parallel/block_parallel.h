// SPDX-License-Identifier: Apache-2.0
// block_parallel.h: a group of ranks sharing one model replica's semantic blocks
// (DESIGN.md §2). BlockParallel holds the versioned block map and this rank's shard
// (the collectives a layer runs with: parallel/block_shard.h), and applies a new map by
// moving block parameters and optimizer moments point to point.
// The FFN is split as well (each rank its contiguous part of the hidden units), and
// optionally the embedding and head by vocabulary rows; what is not split (norms,
// residual stream, and otherwise embeddings, head and loss) runs sequence parallel:
// each rank its part of the positions.
// Each rank stores only its share: its blocks' rows, its FFN part and vocabulary rows
// (parameters, gradients, moments); recruitment runs on the shares too (a trial's block
// on its planned owner), and the whole model is assembled on the lead for evaluation
// only. Limits: an assembled model is a whole copy of the split tensors on that rank.
#pragma once
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.h"
#include "model/localist_model.h"
#include "parallel/block_map.h"
#include "parallel/block_shard.h"
#include "parallel/block_slots.h"

namespace localist {

// A block-parallel rank's shapes of a layer's six split tensors (qkv_w, qkv_b, out_w, fc_w,
// fc_b, proj_w) when it stores `slots` block slots and `units` FFN units.
std::vector<std::vector<int64_t>> block_parallel_split_shapes(const ModelConfig& c, int64_t slots, int64_t units);

// distributed.vocab_parallel: "on", or "auto" when the vocabulary has more rows than a
// micro-batch has tokens (then its gradient traffic and memory outweigh the two activation
// collectives the split adds per micro-batch).
inline bool block_parallel_splits_vocab(const std::string& setting, int64_t vocab, int64_t micro_batch_tokens) {
  return setting == "on" || (setting == "auto" && vocab > micro_batch_tokens);
}

class BlockParallel {
 public:
  // `model` must hold the whole model (as built or loaded); it then holds only this
  // rank's share: the rows of its blocks (block_map_capacity slots), its FFN part and,
  // with `vocab_parallel`, its part of the embedding's vocabulary rows.
  BlockParallel(std::shared_ptr<Communicator> group, LocalistModel& model, BlockMap map, bool vocab_parallel = false);
  bool vocab_parallel() const { return vocab_; }
  const BlockMap& map() const { return map_; }
  const BlockShard& shard() const { return shard_; }
  // The tensors this rank holds a share of, per layer qkv_w, qkv_b, out_w, fc_w, fc_b,
  // proj_w (then wte's rows when vocabulary parallel): the tensors the optimizer and the
  // gradient sync own (the model's own except while assembled).
  const std::vector<at::Tensor>& split_params() const { return block_params_; }
  bool is_split_param(const at::Tensor& t) const;
  // Makes the model whole on every rank of the group (collective): each split tensor is
  // built from its owners' shares (inactive slots zero): the reference tests compare the
  // shares with. Training goes on on the shares: release() before the next step.
  void assemble();
  // The same on group rank `root` alone (evaluation): the other ranks send it their
  // shares point to point and allocate nothing whole (collective over the group).
  void assemble_at(int root);
  // Back to this rank's share, taking its rows from the whole model (a recruitment round
  // may have changed them); frees the whole tensors. Local.
  void release();
  bool assembled() const { return whole_; }
  // A recruitment trial's block: inactive `slot` gets a free row on `owner` (the rank the
  // planner will place it on), so that the shards compute it there; the row holds
  // whatever the storage held (the trial draws it). Local, on every rank of the group.
  void hold_trial(int64_t slot, int32_t owner);
  // Takes the trial's row back (the block was rejected). Local.
  void drop_trial(int64_t slot);
  // Switches to `next` (epoch must be the current one + 1, the same on every rank): each
  // moved block's parameters and moments go from the old owner to the new one; a block
  // switched on takes its parameters from its trial row (hold_trial) or else the
  // assembled model, and zero moments; every rank lays its rows out again (slots
  // ascending). Returns the bytes this rank sent.
  int64_t apply(const BlockMap& next, const MomentsOf& moments);

 private:
  void rebuild_shard();
  void hold_shares();  // the model's layers hold held_ with this rank's rows
  // apply()'s steps. A layer's block tensors as sets of three (the split tensors' shares,
  // then, when the optimizer has them, their exp_avg and their exp_avg_sq).
  using BlockTensorSets = std::vector<std::array<at::Tensor, 3>>;
  void check_next(const BlockMap& next) const;  // collective: every rank goes to the same epoch
  // Kept blocks copied to their new rows, blocks switched on from their trial row (or the
  // assembled model) with zero moments.
  void stage_local(const std::vector<int64_t>& rows, const std::vector<BlockTensorSets>& now,
                   const std::vector<BlockTensorSets>& staged) const;
  // Blocks changing owner, point to point; returns the bytes this rank sent.
  int64_t move_blocks(const BlockMap& next, const std::vector<int64_t>& rows, const std::vector<BlockTensorSets>& now,
                      const std::vector<BlockTensorSets>& staged) const;
  std::shared_ptr<Communicator> group_;
  LocalistModel& model_;
  BlockMap map_;
  BlockShard shard_;
  int64_t capacity_ = 0;
  std::pair<int64_t, int64_t> ffn_, vocab_rows_;  // this rank's FFN units and vocabulary rows [first, second)
  std::vector<int64_t> slot_row_;                 // this rank's row of each slot (-1: not held)
  int64_t trial_slot_ = -1;                       // a trial's inactive block held (hold_trial), or -1
  int32_t trial_owner_ = -1;
  std::vector<std::vector<at::Tensor>> held_;  // per layer: the six split tensors' shares
  std::vector<at::Tensor> block_params_;       // held_, flat
  bool whole_ = false;
  bool vocab_ = false;
  at::Tensor held_wte_;  // vocabulary parallel: this rank's rows of the embedding
};

}  // namespace localist
