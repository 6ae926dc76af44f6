// SPDX-License-Identifier: Apache-2.0
// block_map.h: which semantic block slots are switched on and which block-parallel
// rank owns each (DESIGN.md §2), versioned by an epoch that every rank must agree
// on, and the placement planner that assigns blocks to ranks by load with the fewest
// moves. Pure bookkeeping: moving the tensors is parallel/block_parallel.h's job.
// Limits: one map per model group; loads are supplied by the caller (1 per block by default).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace localist {

struct BlockMap {
  int64_t epoch = 0;
  int32_t bp = 1;               // block-parallel ranks the owners refer to
  std::vector<uint8_t> active;  // per slot: 1 when the block is switched on
  std::vector<int32_t> owner;   // per slot: owning BP rank, -1 when inactive

  int64_t slots() const { return static_cast<int64_t>(active.size()); }
  std::vector<int64_t> owned_by(int32_t rank) const;  // active slots, ascending
  // Load per BP rank (sum of its blocks' loads; `load` per slot, empty = 1 each).
  std::vector<double> rank_loads(const std::vector<double>& load = {}) const;
  // max load / mean load over the ranks (1 = perfectly balanced; 1 when nothing is active).
  double imbalance(const std::vector<double>& load = {}) const;
  // Throws Error naming the first inconsistency (owner out of range, active without owner...).
  void validate() const;
  std::string describe() const;  // "epoch 3, bp 2: slot 0 -> 0, slot 1 -> 1, ..."
  bool operator==(const BlockMap& o) const {
    return epoch == o.epoch && bp == o.bp && active == o.active && owner == o.owner;
  }
};

struct BlockMove {
  int64_t slot;
  int32_t from, to;  // BP ranks
};

struct PlacementOptions {
  // Rebalance (move already placed blocks) only when max/mean load exceeds this.
  double imbalance_threshold = 1.25;
  std::vector<double> load;  // per slot; empty = every block weighs 1
};

// The most active blocks one of bp ranks may own: its share of the slots, rounded up
// (a block-parallel rank stores this many slots' rows).
int64_t block_map_capacity(int64_t slots, int32_t bp);

// The next map (epoch + 1) for `active` slots on `bp` ranks, starting from `current`:
// blocks keep their owner when it still exists and has room (block_map_capacity); new
// or orphaned blocks go to the least-loaded rank with room (heaviest first); when the
// imbalance exceeds the threshold, blocks move from the most- to the least-loaded rank
// with room while that lowers the maximum.
// Deterministic: every rank computes the same map from the same inputs.
BlockMap block_map_plan(const BlockMap& current, const std::vector<uint8_t>& active, int32_t bp,
                        const PlacementOptions& options = {});

// A first map (epoch 0) for `active` slots on `bp` ranks: equal loads give round robin.
BlockMap block_map_initial(const std::vector<uint8_t>& active, int32_t bp, const PlacementOptions& options = {});

// The owner changes from `from` to `to` for slots active in both, by slot.
std::vector<BlockMove> block_map_moves(const BlockMap& from, const BlockMap& to);

}  // namespace localist
