// SPDX-License-Identifier: Apache-2.0
// block_parallel.cpp: see block_parallel.h.
#include "parallel/block_parallel.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/check.h"
#include "core/error.h"

namespace localist {

namespace {

// Slot -> row of the slots `rank` owns under `map`, ascending (-1: not held).
std::vector<int64_t> rows_of(const BlockMap& map, int rank) {
  std::vector<int64_t> rows(map.slots(), -1);
  int64_t next = 0;
  for (int64_t s = 0; s < map.slots(); ++s) {
    if (map.active[s] && map.owner[s] == rank) rows[s] = next++;
  }
  return rows;
}

// The shapes of a layer's six split tensors holding `slots` slots and `units` FFN units.

// The FFN part [a, a + n) of tensor i (3 fc_w, 4 fc_b, 5 proj_w) of a layer.
at::Tensor ffn_slice(const at::Tensor& t, int i, int64_t a, int64_t n) { return t.narrow(i == 5 ? 1 : 0, a, n); }

// Copies the held slots' rows and the FFN part [a, a + n) between a whole layer's six
// split tensors and a rank's share of them, into the share or out of it.
void copy_share(const std::vector<at::Tensor>& whole, const std::vector<at::Tensor>& share, const ModelConfig& c,
                const std::vector<int64_t>& slot_row, int64_t a, int64_t n, bool into_share) {
  for (int64_t s = 0; s < c.k_max; ++s) {
    if (slot_row[s] < 0) continue;
    const auto w = block_slot_views(whole[0], whole[1], whole[2], c, s);
    const auto p = block_slot_views(share[0], share[1], share[2], c, slot_row[s]);
    for (size_t v = 0; v < w.size(); ++v) (into_share ? p[v] : w[v]).copy_(into_share ? w[v] : p[v]);
  }
  for (int i = 3; i < 6; ++i) {
    const auto part = ffn_slice(whole[i], i, a, n);
    (into_share ? share[i] : part).copy_(into_share ? part : share[i]);
  }
}

}  // namespace

std::vector<std::vector<int64_t>> block_parallel_split_shapes(const ModelConfig& c, int64_t slots, int64_t units) {
  const int64_t d = c.d_model, hd = slots * c.heads_per_block * c.head_dim;
  return {{3 * hd, d}, {3 * hd}, {d, hd}, {units, d}, {units}, {d, units}};
}

BlockParallel::BlockParallel(std::shared_ptr<Communicator> group, LocalistModel& model, BlockMap map,
                             bool vocab_parallel)
    : group_(std::move(group)), model_(model), map_(std::move(map)), vocab_(vocab_parallel && group_->size() > 1) {
  map_.validate();
  const auto& c = model_.config();
  if (map_.bp != group_->size() || map_.slots() != c.k_max) {
    throw Error("block map (" + map_.describe() + ") does not fit a block-parallel group of " +
                std::to_string(group_->size()) + " ranks and k_max " + std::to_string(c.k_max));
  }
  capacity_ = block_map_capacity(c.k_max, group_->size());
  for (int r = 0; r < group_->size(); ++r) {
    if (static_cast<int64_t>(map_.owned_by(r).size()) > capacity_) {
      throw Error("block map (" + map_.describe() + ") gives rank " + std::to_string(r) + " more than the " +
                  std::to_string(capacity_) + " blocks a rank stores");
    }
  }
  for (const auto& l : model_.layers) {
    if (!l->blocks_whole() || !l->ffn_whole()) throw Error("block parallelism must start from the whole model");
  }
  if (!model_.vocab_whole()) throw Error("block parallelism must start from the whole model");
  slot_row_ = rows_of(map_, group_->rank());
  ffn_ = block_parallel_ffn_range(c.ffn_mult * c.d_model, group_->rank(), group_->size());
  vocab_rows_ = block_parallel_ffn_range(model_.vocab_size(), group_->rank(), group_->size());
  const auto [a, b] = ffn_;
  at::NoGradGuard no_grad;
  for (auto& l : model_.layers) {
    const auto whole = l->split_tensors();
    const auto shapes = block_parallel_split_shapes(c, capacity_, b - a);
    std::vector<at::Tensor> share;
    for (int i = 0; i < 6; ++i) share.push_back(at::zeros(shapes[i], whole[i].options()));
    copy_share(whole, share, c, slot_row_, a, b - a, /*into_share=*/true);
    held_.push_back(share);
    block_params_.insert(block_params_.end(), share.begin(), share.end());
  }
  if (vocab_) {
    const auto [v0, v1] = vocab_rows_;
    held_wte_ = model_.wte.narrow(0, v0, v1 - v0).clone();
    block_params_.push_back(held_wte_);
  }
  hold_shares();
  rebuild_shard();
}

void BlockParallel::hold_shares() {
  for (size_t l = 0; l < model_.layers.size(); ++l) model_.layers[l]->hold(held_[l], slot_row_, ffn_.first);
  if (vocab_) {
    model_.hold_vocab(held_wte_, vocab_rows_.first);
  }
}

bool BlockParallel::is_split_param(const at::Tensor& t) const {
  for (const auto& b : block_params_) {
    if (b.is_same(t)) return true;
  }
  return false;
}

void BlockParallel::rebuild_shard() {
  const auto& c = model_.config();
  auto owned = map_.owned_by(group_->rank());
  if (trial_slot_ >= 0 && trial_owner_ == group_->rank()) {
    owned.insert(std::upper_bound(owned.begin(), owned.end(), trial_slot_), trial_slot_);
  }
  shard_ = block_shard_make(group_, std::move(owned), c.ffn_mult * c.d_model, /*sequence_parallel=*/true,
                            vocab_ ? model_.vocab_size() : 0);
}

void BlockParallel::hold_trial(int64_t slot, int32_t owner) {
  const auto& c = model_.config();
  LOCALIST_CHECK(!whole_, "block map: a trial block while the model is assembled");
  LOCALIST_CHECK(
      !(slot < 0 || slot >= c.k_max || map_.active[slot] || trial_slot_ >= 0 || owner < 0 || owner >= group_->size()),
      "block map: cannot hold block ", slot, " for a trial on rank ", owner, " under ", map_.describe());
  trial_slot_ = slot, trial_owner_ = owner;
  if (owner == group_->rank()) {
    // The first row this rank's blocks leave free (rows_of packs them from 0).
    const int64_t row = static_cast<int64_t>(map_.owned_by(owner).size());
    LOCALIST_CHECK(row < capacity_, "block map: rank ", owner, " has no free row for block ", slot, " (it stores ",
                   capacity_, "; the planner's placement)");
    slot_row_[slot] = row;
    hold_shares();
  }
  rebuild_shard();
}

void BlockParallel::drop_trial(int64_t slot) {
  if (slot != trial_slot_) return;
  if (trial_owner_ == group_->rank()) {
    slot_row_[slot] = -1;
    hold_shares();
  }
  trial_slot_ = -1, trial_owner_ = -1;
  rebuild_shard();
}

void BlockParallel::assemble() {
  if (whole_) return;
  at::NoGradGuard no_grad;
  const auto& c = model_.config();
  const auto [a, b] = ffn_;
  const auto shapes = block_parallel_split_shapes(c, c.k_max, c.ffn_mult * c.d_model);
  for (size_t l = 0; l < model_.layers.size(); ++l) {
    const auto& share = held_[l];
    std::vector<at::Tensor> whole;
    for (int i = 0; i < 6; ++i) whole.push_back(at::zeros(shapes[i], share[i].options()));
    copy_share(whole, share, c, slot_row_, a, b - a, /*into_share=*/false);
    // Each value has one owner and zeros elsewhere: the sums are exact.
    for (auto& t : whole) group_->all_reduce(t, ReduceOp::kSum, "block parameters (assembling the model)");
    model_.layers[l]->hold(whole, {}, 0);
  }
  if (vocab_) {
    auto whole = at::zeros({model_.vocab_size(), held_wte_.size(1)}, held_wte_.options());
    whole.narrow(0, model_.vocab_begin, held_wte_.size(0)).copy_(held_wte_);
    group_->all_reduce(whole, ReduceOp::kSum, "embedding rows (assembling the model)");
    model_.hold_vocab(whole, 0);
  }
  whole_ = true;
}

void BlockParallel::assemble_at(int root) {
  if (whole_) return;
  constexpr int kAssembleTag = 31001;  // below the MPI backend's reserved ring tag
  at::NoGradGuard no_grad;
  const auto& c = model_.config();
  const int64_t hidden = c.ffn_mult * c.d_model, V = model_.vocab_size();
  const int me = group_->rank(), n = group_->size();
  // Per layer the six split tensors, then (vocabulary parallel) the embedding rows: one
  // message per tensor, in that order.
  std::vector<at::Tensor> mine;
  for (const auto& share : held_) mine.insert(mine.end(), share.begin(), share.end());
  if (vocab_) mine.push_back(held_wte_);
  if (me != root) {
    for (const auto& t : mine) group_->send(t.contiguous(), root, kAssembleTag, "block-parallel share (evaluation)");
    return;
  }
  const auto shapes = block_parallel_split_shapes(c, c.k_max, hidden);
  std::vector<std::vector<at::Tensor>> whole(model_.layers.size());
  for (size_t l = 0; l < whole.size(); ++l) {
    for (int i = 0; i < 6; ++i) whole[l].push_back(at::zeros(shapes[i], held_[l][i].options()));
  }
  at::Tensor wte;
  if (vocab_) wte = at::zeros({V, held_wte_.size(1)}, held_wte_.options());
  for (int r = 0; r < n; ++r) {
    const auto rows = rows_of(map_, r);
    const auto [a, b] = block_parallel_ffn_range(hidden, r, n);
    const auto [v0, v1] = block_parallel_ffn_range(V, r, n);
    size_t k = 0;
    for (size_t l = 0; l < whole.size(); ++l) {
      std::vector<at::Tensor> share;
      for (int i = 0; i < 6; ++i, ++k) {
        if (r == me) {
          share.push_back(mine[k]);
          continue;
        }
        auto t = at::empty(block_parallel_split_shapes(c, capacity_, b - a)[i], mine[k].options());
        group_->recv(t, r, kAssembleTag, "block-parallel share of rank " + std::to_string(r) + " (evaluation)");
        share.push_back(t);
      }
      copy_share(whole[l], share, c, rows, a, b - a, /*into_share=*/false);
    }
    if (vocab_) {
      at::Tensor rows_r = mine[k];
      if (r != me) {
        rows_r = at::empty({v1 - v0, held_wte_.size(1)}, held_wte_.options());
        group_->recv(rows_r, r, kAssembleTag, "embedding rows of rank " + std::to_string(r) + " (evaluation)");
      }
      wte.narrow(0, v0, v1 - v0).copy_(rows_r);
    }
  }
  for (size_t l = 0; l < whole.size(); ++l) model_.layers[l]->hold(whole[l], {}, 0);
  if (vocab_) model_.hold_vocab(wte, 0);
  whole_ = true;
}

void BlockParallel::release() {
  if (!whole_) return;
  at::NoGradGuard no_grad;
  const auto& c = model_.config();
  const auto [a, b] = ffn_;
  for (size_t l = 0; l < model_.layers.size(); ++l) {
    const auto whole = model_.layers[l]->split_tensors();
    copy_share(whole, held_[l], c, slot_row_, a, b - a, /*into_share=*/true);
  }
  if (vocab_) {
    held_wte_.copy_(model_.wte.narrow(0, vocab_rows_.first, held_wte_.size(0)));
  }
  hold_shares();
  whole_ = false;
}

namespace {

// The views of one slot at `row` of a layer's block tensor sets, set by set.
std::vector<at::Tensor> slot_views(const std::vector<std::array<at::Tensor, 3>>& sets, const ModelConfig& c,
                                   int64_t row) {
  std::vector<at::Tensor> v;
  for (const auto& t : sets) {
    for (auto& x : block_slot_views(t[0], t[1], t[2], c, row)) v.push_back(x);
  }
  return v;
}

}  // namespace

void BlockParallel::check_next(const BlockMap& next) const {
  next.validate();
  if (next.bp != map_.bp || next.slots() != map_.slots() || next.epoch != map_.epoch + 1) {
    throw Error("block map: cannot go from " + map_.describe() + " to " + next.describe() +
                " (needs the next epoch on the same group and slots)");
  }
  // NOTE(block map): every rank must switch at the same step to the same epoch; a rank
  // that disagrees would compute the wrong blocks silently, so it is checked here.
  // Small tensors live where the group's backend carries them (NCCL: on the GPU).
  const auto dev = model_.wte.device();
  auto epochs = at::tensor(std::vector<int64_t>{next.epoch, -next.epoch}, at::kLong).to(dev);
  group_->all_reduce(epochs, ReduceOp::kMax, "block map epoch check");
  if (epochs[0].item<int64_t>() != next.epoch || -epochs[1].item<int64_t>() != next.epoch) {
    throw Error("block map: ranks of group '" + group_->name() +
                "' disagree on the epoch to apply (this rank: " + std::to_string(next.epoch) + ")");
  }
  LOCALIST_CHECK(!(trial_slot_ >= 0 && next.active[trial_slot_] && next.owner[trial_slot_] != trial_owner_),
                 "block map ", next.describe(), " places block ", trial_slot_, " on rank ", next.owner[trial_slot_],
                 ", its trial ran on rank ", trial_owner_, " (the planner's placement)");
}

void BlockParallel::stage_local(const std::vector<int64_t>& rows, const std::vector<BlockTensorSets>& now,
                                const std::vector<BlockTensorSets>& staged) const {
  const auto& c = model_.config();
  for (int64_t s = 0; s < c.k_max; ++s) {
    if (rows[s] < 0) continue;
    const bool was_active = map_.active[s] != 0;
    if (was_active && slot_row_[s] < 0) continue;  // arrives from its old owner (move_blocks)
    for (size_t l = 0; l < now.size(); ++l) {
      const auto to = slot_views(staged[l], c, rows[s]);
      if (was_active) {
        const auto from = slot_views(now[l], c, slot_row_[s]);
        for (size_t v = 0; v < to.size(); ++v) to[v].copy_(from[v]);
        continue;
      }
      std::vector<at::Tensor> from;
      if (slot_row_[s] >= 0) {
        const auto& p = now[l][0];
        from = block_slot_views(p[0], p[1], p[2], c, slot_row_[s]);
      } else if (whole_) {
        const auto w = model_.layers[l]->split_tensors();
        from = block_slot_views(w[0], w[1], w[2], c, s);
      } else {
        LOCALIST_CHECK(false, "block map: block ", s,
                       " switched on here, but this rank neither holds it for a trial nor has the model assembled");
      }
      for (size_t v = 0; v < from.size(); ++v) to[v].copy_(from[v]);
    }
  }
}

int64_t BlockParallel::move_blocks(const BlockMap& next, const std::vector<int64_t>& rows,
                                   const std::vector<BlockTensorSets>& now,
                                   const std::vector<BlockTensorSets>& staged) const {
  const auto& c = model_.config();
  const auto dev = model_.wte.device();
  const int me = group_->rank();
  int64_t sent = 0;
  // Moves run in slot order on every rank, so the first unfinished move's two ranks
  // are both waiting on it: no cycle, no deadlock.
  for (const auto& mv : block_map_moves(map_, next)) {
    if (me != mv.from && me != mv.to) continue;
    const std::string what =
        "block " + std::to_string(mv.slot) + " move (map epoch " + std::to_string(next.epoch) + ")";
    const int tag = static_cast<int>(mv.slot);
    std::vector<at::Tensor> views;  // per layer: the slot's parameters, then its moments
    for (size_t l = 0; l < now.size(); ++l) {
      for (auto& v :
           me == mv.from ? slot_views(now[l], c, slot_row_[mv.slot]) : slot_views(staged[l], c, rows[mv.slot])) {
        views.push_back(v);
      }
    }
    if (me == mv.from) {
      std::vector<at::Tensor> flat;
      for (const auto& v : views) flat.push_back(v.reshape({-1}));
      const auto payload = at::cat(flat).contiguous();
      const auto count = at::tensor(std::vector<int64_t>{payload.numel()}, at::kLong).to(dev);
      group_->send(count, mv.to, tag, what + " size");
      group_->send(payload, mv.to, tag, what);
      sent += payload.numel() * payload.element_size();
    } else {
      auto count = at::zeros({1}, at::dtype(at::kLong).device(dev));
      group_->recv(count, mv.from, tag, what + " size");
      int64_t expected = 0;
      for (const auto& v : views) expected += v.numel();
      if (count.item<int64_t>() != expected) {
        throw Error(what + ": rank " + std::to_string(mv.from) + " sends " + std::to_string(count.item<int64_t>()) +
                    " values, this rank expects " + std::to_string(expected) +
                    " (optimizer state differs between ranks)");
      }
      auto payload = at::empty({expected}, views.front().options());
      group_->recv(payload, mv.from, tag, what);
      int64_t off = 0;
      for (auto& v : views) {
        v.copy_(payload.narrow(0, off, v.numel()).view_as(v));
        off += v.numel();
      }
    }
  }
  return sent;
}

int64_t BlockParallel::apply(const BlockMap& next, const MomentsOf& moments) {
  check_next(next);
  at::NoGradGuard no_grad;
  const auto& c = model_.config();
  const auto rows = rows_of(next, group_->rank());
  for (int64_t s = 0; s < c.k_max; ++s) {
    if (rows[s] >= capacity_) {
      throw Error("block map " + next.describe() + " gives this rank more than the " + std::to_string(capacity_) +
                  " blocks it stores");
    }
  }
  // Per layer: the block tensors and their moments, and `staged`, the same laid out for
  // the next map.
  const size_t L = model_.layers.size();
  std::vector<BlockTensorSets> now(L), staged(L);
  for (size_t l = 0; l < L; ++l) {
    now[l].push_back({held_[l][0], held_[l][1], held_[l][2]});
    const auto w = moments(held_[l][0]), b = moments(held_[l][1]), o = moments(held_[l][2]);
    if (w.size() == 2 && b.size() == 2 && o.size() == 2) {
      now[l].push_back({w[0], b[0], o[0]});
      now[l].push_back({w[1], b[1], o[1]});
    }
    for (const auto& t : now[l])
      staged[l].push_back({at::zeros_like(t[0]), at::zeros_like(t[1]), at::zeros_like(t[2])});
  }
  stage_local(rows, now, staged);
  const int64_t sent = move_blocks(next, rows, now, staged);
  // In place: the optimizer and the gradient sync keep their tensors.
  for (size_t l = 0; l < L; ++l) {
    for (size_t k = 0; k < now[l].size(); ++k) {
      for (size_t j = 0; j < 3; ++j) now[l][k][j].copy_(staged[l][k][j]);
    }
  }
  map_ = next;
  slot_row_ = rows;
  trial_slot_ = -1, trial_owner_ = -1;  // a trial's block is now placed (or was not kept)
  if (!whole_) hold_shares();
  rebuild_shard();
  return sent;
}

}  // namespace localist
