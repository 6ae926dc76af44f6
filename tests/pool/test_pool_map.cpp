// SPDX-License-Identifier: Apache-2.0
// test_pool_map.cpp: the pool map planner (pool/pool_map.h) against a naive
// search over every assignment of units to LLMs: the same largest per-unit load (shares
// by load), and among the maps with that load the same fewest moves from the previous
// map (re-plans after a branch and after a change of world size); sharing when the world
// has fewer units than the pool has LLMs.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <set>

#include "core/error.h"
#include "pool/pool_map.h"

using localist::PoolMap;

namespace {

struct Best {
  double load = std::numeric_limits<double>::infinity();
  int64_t moves = std::numeric_limits<int64_t>::max();
};

// Every map: disjoint (each unit to one LLM, each LLM some unit) when units >= LLMs, else
// each LLM on one unit with every unit used; the lexicographic optimum (load, moves).
Best naive(const std::vector<double>& loads, int units, const PoolMap* prev) {
  std::vector<int> live;
  for (size_t i = 0; i < loads.size(); ++i) {
    if (loads[i] > 0) live.push_back(static_cast<int>(i));
  }
  const int L = static_cast<int>(live.size());
  const bool disjoint = units >= L;
  const int slots = disjoint ? units : L, choices = disjoint ? L : units;
  Best best;
  std::vector<int> pick(slots, 0);
  std::function<void(int)> rec = [&](int k) {
    if (k == slots) {
      PoolMap m;
      m.world = units, m.bp = 1;
      m.units.assign(loads.size(), {});
      for (int s = 0; s < slots; ++s) {
        if (disjoint)
          m.units[live[pick[s]]].push_back(s);
        else
          m.units[live[s]].push_back(pick[s]);
      }
      std::set<int> used;
      for (int i : live) {
        if (m.units[i].empty()) return;
        used.insert(m.units[i].begin(), m.units[i].end());
      }
      if (static_cast<int>(used.size()) != units) return;
      const double load = m.max_unit_load(loads);
      const int64_t moves = prev ? localist::pool_map_moves(*prev, m) : 0;
      if (load < best.load * (1 - 1e-12) || (load <= best.load * (1 + 1e-12) && moves < best.moves)) {
        best.load = load, best.moves = moves;
      }
      return;
    }
    for (int c = 0; c < choices; ++c) pick[k] = c, rec(k + 1);
  };
  rec(0);
  return best;
}

void expect_optimal(const std::vector<double>& loads, int units, const PoolMap* prev, const std::string& what) {
  const PoolMap m = localist::pool_map_plan(loads, units, 1, prev);
  const Best b = naive(loads, units, prev);
  EXPECT_NEAR(m.max_unit_load(loads), b.load, 1e-9 * b.load) << what;
  if (prev) EXPECT_EQ(localist::pool_map_moves(*prev, m), b.moves) << what << ": " << m.describe({});
  for (size_t i = 0; i < loads.size(); ++i) EXPECT_EQ(m.units[i].empty(), loads[i] <= 0) << what << " llm " << i;
}

}  // namespace

TEST(PoolMap, SharesByLoadAndSharingMatchTheNaiveSearch) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> batch(1, 4);
  for (int trial = 0; trial < 120; ++trial) {
    const int L = 1 + trial % 4, units = 1 + (trial / 4) % 6;
    std::vector<double> loads(L);
    for (auto& l : loads) l = 8.0 * batch(rng);
    expect_optimal(loads, units, nullptr, "trial " + std::to_string(trial));
  }
}

TEST(PoolMap, ReplanMovesTheFewestStates) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> batch(1, 3);
  for (int trial = 0; trial < 120; ++trial) {
    const int L = 2 + trial % 3, before = 1 + (trial / 3) % 5, after = 1 + (trial / 15) % 5;
    std::vector<double> loads(L);
    for (auto& l : loads) l = 16.0 * batch(rng);
    // A branch: the last LLM is new (the previous map lacks it) ...
    std::vector<double> older = loads;
    older.back() = 0;
    const PoolMap prev = localist::pool_map_plan(older, before, 1, nullptr);
    expect_optimal(loads, before, &prev, "branch, trial " + std::to_string(trial));
    // ... and a resume on another world size re-plans the same pool.
    const PoolMap full = localist::pool_map_plan(loads, before, 1, nullptr);
    expect_optimal(loads, after, &full, "resize " + std::to_string(before) + "->" + std::to_string(after));
  }
}

TEST(PoolMap, MapQueriesAndJson) {
  // Two LLMs of equal load on 4 ranks of bp 2: a replica each.
  const PoolMap m = localist::pool_map_plan({16, 16}, 4, 2, nullptr);
  EXPECT_EQ(m.ranks(0), (std::vector<int>{0, 1}));
  EXPECT_EQ(m.ranks(1), (std::vector<int>{2, 3}));
  EXPECT_EQ(m.llms_of(3), (std::vector<int>{1}));
  EXPECT_FALSE(m.shared());
  EXPECT_EQ(m.describe({"main", "drama"}), "main:0-1 drama:2-3");
  EXPECT_NE(m.group_color(0), m.group_color(2));
  // Three LLMs on 2 units share: main alone (twice the load), the specialists together.
  const PoolMap s = localist::pool_map_plan({32, 16, 16}, 2, 1, nullptr);
  EXPECT_TRUE(s.shared());
  EXPECT_EQ(s.units[1], s.units[2]);
  EXPECT_NE(s.units[0], s.units[1]);
  EXPECT_EQ(s.group_color(s.units[1].front()), s.units[1].front());
  const PoolMap back = PoolMap::from_json(nlohmann::json::parse(s.to_json().dump()));
  EXPECT_EQ(back.units, s.units);
  EXPECT_THROW(PoolMap::from_json(nlohmann::json::parse(R"({"epoch":0,"world":2,"bp":1,"units":[[5]]})")),
               localist::Error);
  EXPECT_THROW(localist::pool_map_plan({0, 0}, 2, 1, nullptr), localist::Error);
  EXPECT_THROW(localist::pool_map_plan({1}, 3, 2, nullptr), localist::Error);
}
