// SPDX-License-Identifier: Apache-2.0
// pool_map.h: the pool map (DESIGN.md §2): which ranks train each LLM of the pool. The
// world is cut into units of `bp` consecutive ranks (one block-parallel replica); each
// existing LLM gets units in proportion to its load (tokens per step × FLOPs per token),
// at least one. When the pool has more LLMs than the world has units, LLMs share units:
// each LLM then lives on exactly one unit, and a rank trains its LLMs in pool order.
// Re-planning (a branch, a resume on another world size) keeps every LLM on as many of
// its previous units as the new shares allow, so the fewest states move.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace localist {

struct PoolMap {
  int64_t epoch = 0;
  int world = 1, bp = 1;
  std::vector<std::vector<int>> units;  // per LLM of the pool config: its units, ascending (empty: not existing)

  int unit_count() const { return world / bp; }
  bool has(size_t llm, int rank) const;
  std::vector<int> ranks(size_t llm) const;  // world ranks, ascending
  std::vector<int> llms_of(int rank) const;  // the LLMs this rank trains, pool order
  // A rank's group: the ranks it trains all its LLMs with (those LLMs share one set of
  // units), named by the set's first unit; -1 if the rank trains nothing.
  int group_color(int rank) const;
  bool shared() const;  // some unit holds several LLMs
  double max_unit_load(const std::vector<double>& loads) const;
  std::string describe(const std::vector<std::string>& names) const;  // "main:0-1 drama:2-3"
  nlohmann::json to_json() const;
  static PoolMap from_json(const nlohmann::json& j);  // throws Error on a malformed map
};

// loads[i] > 0 for the LLMs that exist, 0 for those that do not. `previous` (may be
// null) is the map in force: the new map keeps LLMs on their units where it can, and
// its epoch is the previous one's + 1. Throws Error when no LLM exists or world % bp != 0.
PoolMap pool_map_plan(const std::vector<double>& loads, int world, int bp, const PoolMap* previous);
// States that must move from `previous` to `next`: (LLM, unit) pairs of next that the
// LLM did not have (a new LLM's units all count).
int64_t pool_map_moves(const PoolMap& previous, const PoolMap& next);

}  // namespace localist
