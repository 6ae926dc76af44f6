// SPDX-License-Identifier: Apache-2.0
// block_map.cpp: see block_map.h.
#include "parallel/block_map.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace localist {

std::vector<int64_t> BlockMap::owned_by(int32_t rank) const {
  std::vector<int64_t> out;
  for (int64_t s = 0; s < slots(); ++s) {
    if (active[s] && owner[s] == rank) out.push_back(s);
  }
  return out;
}

std::vector<double> BlockMap::rank_loads(const std::vector<double>& load) const {
  std::vector<double> out(std::max<int32_t>(bp, 1), 0.0);
  for (int64_t s = 0; s < slots(); ++s) {
    if (active[s] && owner[s] >= 0 && owner[s] < bp) out[owner[s]] += load.empty() ? 1.0 : load[s];
  }
  return out;
}

double BlockMap::imbalance(const std::vector<double>& load) const {
  const auto l = rank_loads(load);
  const double total = std::accumulate(l.begin(), l.end(), 0.0);
  if (total <= 0) return 1.0;
  return *std::max_element(l.begin(), l.end()) / (total / static_cast<double>(l.size()));
}

void BlockMap::validate() const {
  if (bp < 1) throw Error("block map: bp " + std::to_string(bp) + " must be at least 1");
  if (owner.size() != active.size()) {
    throw Error("block map: " + std::to_string(active.size()) + " slots but " + std::to_string(owner.size()) +
                " owners (a corrupt or hand-edited map)");
  }
  for (int64_t s = 0; s < slots(); ++s) {
    if (active[s] && (owner[s] < 0 || owner[s] >= bp)) {
      throw Error("block map epoch " + std::to_string(epoch) + ": active slot " + std::to_string(s) + " has owner " +
                  std::to_string(owner[s]) + ", outside the " + std::to_string(bp) + " block-parallel ranks");
    }
    if (!active[s] && owner[s] != -1) {
      throw Error("block map epoch " + std::to_string(epoch) + ": inactive slot " + std::to_string(s) +
                  " has an owner (" + std::to_string(owner[s]) + ")");
    }
  }
}

std::string BlockMap::describe() const {
  std::string s = "epoch " + std::to_string(epoch) + ", bp " + std::to_string(bp) + ":";
  bool first = true;
  for (int64_t i = 0; i < slots(); ++i) {
    if (!active[i]) continue;
    s += (first ? " slot " : ", slot ") + std::to_string(i) + " -> " + std::to_string(owner[i]);
    first = false;
  }
  return first ? s + " no active blocks" : s;
}

BlockMap block_map_plan(const BlockMap& current, const std::vector<uint8_t>& active, int32_t bp,
                        const PlacementOptions& options) {
  if (bp < 1) throw Error("placement: bp " + std::to_string(bp) + " must be at least 1");
  const int64_t n = static_cast<int64_t>(active.size());
  if (!options.load.empty() && static_cast<int64_t>(options.load.size()) != n) {
    throw Error("placement: " + std::to_string(options.load.size()) + " loads for " + std::to_string(n) + " slots");
  }
  auto load_of = [&](int64_t s) { return options.load.empty() ? 1.0 : options.load[s]; };
  BlockMap next;
  next.epoch = current.epoch + 1;
  next.bp = bp;
  next.active = active;
  next.owner.assign(n, -1);
  std::vector<double> rank_load(bp, 0.0);
  // A rank stores at most its share of the slots (block_map_capacity), so a block-parallel
  // rank's block memory is 1/bp of the whole model's.
  const int64_t capacity = block_map_capacity(n, bp);
  std::vector<int64_t> held(bp, 0);
  auto least_loaded_with_room = [&]() {
    int32_t best = -1;
    for (int32_t r = 0; r < bp; ++r) {
      if (held[r] < capacity && (best < 0 || rank_load[r] < rank_load[best])) best = r;
    }
    return best;
  };
  std::vector<int64_t> unplaced;
  for (int64_t s = 0; s < n; ++s) {
    if (!active[s]) continue;
    const bool kept = s < current.slots() && current.active[s] && current.owner[s] >= 0 && current.owner[s] < bp &&
                      held[current.owner[s]] < capacity;
    if (kept) {
      next.owner[s] = current.owner[s];
      rank_load[next.owner[s]] += load_of(s);
      ++held[next.owner[s]];
    } else {
      unplaced.push_back(s);
    }
  }
  // Heaviest first onto the least-loaded rank with room (ties: lowest slot, lowest rank).
  std::stable_sort(unplaced.begin(), unplaced.end(), [&](int64_t a, int64_t b) { return load_of(a) > load_of(b); });
  for (int64_t s : unplaced) {
    const int32_t r = least_loaded_with_room();
    next.owner[s] = r;
    rank_load[r] += load_of(s);
    ++held[r];
  }
  // NOTE(placement): rebalancing moves only when the imbalance passes the threshold and
  // each move strictly lowers the heavier of the two ranks involved, so the number of
  // moves (bytes sent) stays small and the loop ends.
  const double total = std::accumulate(rank_load.begin(), rank_load.end(), 0.0);
  const double mean = total / bp;
  for (int64_t guard = 0; total > 0 && guard < n; ++guard) {
    const auto hi = static_cast<int32_t>(std::max_element(rank_load.begin(), rank_load.end()) - rank_load.begin());
    const int32_t lo = least_loaded_with_room();
    if (lo < 0 || rank_load[hi] / mean <= options.imbalance_threshold) break;
    int64_t best = -1;
    for (int64_t s = 0; s < n; ++s) {
      if (!active[s] || next.owner[s] != hi) continue;
      const double w = load_of(s);
      if (std::max(rank_load[hi] - w, rank_load[lo] + w) < rank_load[hi] && (best < 0 || w > load_of(best))) best = s;
    }
    if (best < 0) break;
    next.owner[best] = lo;
    --held[hi], ++held[lo];
    rank_load[hi] -= load_of(best);
    rank_load[lo] += load_of(best);
  }
  next.validate();
  return next;
}

int64_t block_map_capacity(int64_t slots, int32_t bp) { return (slots + bp - 1) / bp; }

BlockMap block_map_initial(const std::vector<uint8_t>& active, int32_t bp, const PlacementOptions& options) {
  BlockMap empty;
  empty.epoch = -1;
  auto m = block_map_plan(empty, active, bp, options);
  return m;
}

std::vector<BlockMove> block_map_moves(const BlockMap& from, const BlockMap& to) {
  std::vector<BlockMove> moves;
  for (int64_t s = 0; s < std::min(from.slots(), to.slots()); ++s) {
    if (from.active[s] && to.active[s] && from.owner[s] != to.owner[s])
      moves.push_back({s, from.owner[s], to.owner[s]});
  }
  return moves;
}

}  // namespace localist
