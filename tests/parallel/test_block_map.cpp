// SPDX-License-Identifier: Apache-2.0
// test_block_map.cpp: the placement planner against naive references: equal loads give
// round robin; placed blocks stay put; new and orphaned blocks go to the least-loaded
// rank; after planning no single move lowers the maximum load when the imbalance is
// above the threshold (checked by trying every move); bad maps are named.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "core/error.h"
#include "parallel/block_map.h"

using namespace localist;

namespace {
int64_t held_by(const BlockMap& m, int32_t r) {
  int64_t n = 0;
  for (int64_t s = 0; s < m.slots(); ++s) n += m.active[s] && m.owner[s] == r;
  return n;
}

// Naive reference: the lowest maximum load reachable from `m` by moving one block to a
// rank with room.
double best_single_move_max(const BlockMap& m, const std::vector<double>& load) {
  const auto start = m.rank_loads(load);
  double best = *std::max_element(start.begin(), start.end());
  for (int64_t s = 0; s < m.slots(); ++s) {
    if (!m.active[s]) continue;
    for (int32_t r = 0; r < m.bp; ++r) {
      if (held_by(m, r) >= block_map_capacity(m.slots(), m.bp)) continue;
      BlockMap t = m;
      t.owner[s] = r;
      const auto l = t.rank_loads(load);
      best = std::min(best, *std::max_element(l.begin(), l.end()));
    }
  }
  return best;
}
}  // namespace

TEST(BlockMap, EqualLoadsGiveRoundRobin) {
  const auto m = block_map_initial(std::vector<uint8_t>(7, 1), 3);
  EXPECT_EQ(m.epoch, 0);
  for (int64_t s = 0; s < 7; ++s) EXPECT_EQ(m.owner[s], s % 3);
  EXPECT_EQ(m.owned_by(1), (std::vector<int64_t>{1, 4}));
  EXPECT_DOUBLE_EQ(m.imbalance(), 3.0 / (7.0 / 3.0));
}

TEST(BlockMap, PlacedBlocksStayAndNewOnesGoToTheLeastLoadedRank) {
  std::vector<uint8_t> active{1, 1, 1, 0, 0, 0};
  const auto m0 = block_map_initial(active, 2);  // 0 -> 0, 1 -> 1, 2 -> 0
  EXPECT_EQ(m0.owner, (std::vector<int32_t>{0, 1, 0, -1, -1, -1}));
  active[4] = 1;  // a recruited block
  const auto m1 = block_map_plan(m0, active, 2);
  EXPECT_EQ(m1.epoch, 1);
  EXPECT_EQ(m1.owner, (std::vector<int32_t>{0, 1, 0, -1, 1, -1}));
  EXPECT_TRUE(block_map_moves(m0, m1).empty());
  // Elastic: the same blocks on 3 ranks; rank 2 is empty, so one block moves (the fewest).
  const auto m2 = block_map_plan(m1, active, 3);
  const auto moves = block_map_moves(m1, m2);
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0].to, 2);
  auto loads = m2.rank_loads();
  std::sort(loads.begin(), loads.end());
  EXPECT_EQ(loads, (std::vector<double>{1, 1, 2}));  // the best 4 blocks on 3 ranks can do
  // On 1 rank everything is owned by rank 0.
  const auto m3 = block_map_plan(m2, active, 1);
  for (int64_t s = 0; s < 6; ++s) EXPECT_EQ(m3.owner[s], active[s] ? 0 : -1);
}

TEST(BlockMap, RebalancingLeavesNoImprovingSingleMove) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0.1, 3.0);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t k = 2 + trial % 11;
    const int32_t bp = 1 + trial % 4;
    std::vector<uint8_t> active(k);
    std::vector<double> load(k);
    for (int64_t s = 0; s < k; ++s) active[s] = (rng() % 4) != 0, load[s] = u(rng);
    // Start from a deliberately bad map: everything on rank 0.
    BlockMap bad;
    bad.bp = bp, bad.active = active, bad.owner.assign(k, -1);
    for (int64_t s = 0; s < k; ++s) bad.owner[s] = active[s] ? 0 : -1;
    PlacementOptions opt;
    opt.load = load;
    opt.imbalance_threshold = 1.1;
    const auto m = block_map_plan(bad, active, bp, opt);
    const auto l = m.rank_loads(load);
    const double max_load = *std::max_element(l.begin(), l.end());
    if (m.imbalance(load) > opt.imbalance_threshold) {
      EXPECT_GE(best_single_move_max(m, load), max_load - 1e-12) << "trial " << trial;
    }
    double total = 0;
    for (double x : l) total += x;
    double expect = 0;
    for (int64_t s = 0; s < k; ++s) expect += active[s] ? load[s] : 0;
    EXPECT_NEAR(total, expect, 1e-9);  // every active block placed once
    for (int32_t r = 0; r < bp; ++r) EXPECT_LE(held_by(m, r), block_map_capacity(k, bp)) << "trial " << trial;
  }
}

TEST(BlockMap, NoRankOwnsMoreThanItsShareOfTheSlots) {
  // Elastic 2 -> 4 ranks: rank 0 owned 4 of 8 slots, but a rank of 4 stores only 2.
  BlockMap m = block_map_initial(std::vector<uint8_t>(8, 1), 2);
  const auto m4 = block_map_plan(m, std::vector<uint8_t>(8, 1), 4);
  for (int32_t r = 0; r < 4; ++r) EXPECT_EQ(held_by(m4, r), 2) << "rank " << r;
  // Heavy loads that would all go to one rank still respect the capacity.
  PlacementOptions opt;
  opt.load = {100, 1, 1, 1, 1, 1};
  const auto h = block_map_initial(std::vector<uint8_t>(6, 1), 2, opt);
  EXPECT_EQ(held_by(h, 0) + held_by(h, 1), 6);
  EXPECT_LE(held_by(h, 0), 3);
  EXPECT_LE(held_by(h, 1), 3);
  EXPECT_EQ(block_map_capacity(7, 3), 3);
}

TEST(BlockMap, InconsistentMapsAreNamed) {
  BlockMap m = block_map_initial({1, 1}, 2);
  m.owner[1] = 5;
  try {
    m.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("active slot 1 has owner 5"), std::string::npos) << e.what();
  }
  m.owner = {0};
  EXPECT_THROW(m.validate(), Error);
  EXPECT_THROW(block_map_plan(m, {1, 1}, 0), Error);
}
