// SPDX-License-Identifier: Apache-2.0
// test_sharded_trial.cpp: under mpirun, a recruitment trial on block-parallel shards (the
// windows over the data-parallel ranks, each replica's ranks computing together) gives
// the held-out bits and the gradients of the router and the new block of the same trial
// on the whole model on one rank (float32, 1e-5 relative), and after its updates the same
// held-out bits; the trial's new block exists only on its planned owner, and no rank
// holds more than its share (counted). (Trained parameters are compared through the bits
// they give: Adam turns round-off in near-zero gradients into steps of size lr.)
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "comm/communicator.h"
#include "data/batch_reader.h"
#include "data/prepare.h"
#include "model/localist_model.h"
#include "parallel/block_map.h"
#include "parallel/block_parallel.h"
#include "parallel/block_slots.h"
#include "recruitment/trial.h"
#include "tests/main/mpi_gtest_main.h"
#include "tests/test_util.h"
#include "trainer/model_group.h"

using namespace localist;

namespace {

ModelConfig trial_config() {
  ModelConfig c;
  c.d_model = 16, c.n_layers = 2, c.context = 16, c.heads_per_block = 2, c.head_dim = 4;
  c.k_max = 6, c.k_initial = 3, c.anchor_dim = 4, c.ffn_mult = 2;
  return c;
}

// What a block trial trains (the recruiter's choice, restated): every layer's router and,
// where this rank holds it, the slot's rows and columns.
std::vector<TrainedTensor> trained(LocalistModel& m, int64_t slot) {
  std::vector<TrainedTensor> out;
  const auto& c = m.config();
  for (auto& l : m.layers) {
    out.push_back({l->router_w, nullptr});
    if (!l->holds(slot)) continue;
    const int64_t row = l->row(slot);
    const at::Tensor* block[3] = {&l->qkv_w, &l->qkv_b, &l->out_w};
    for (int which = 0; which < 3; ++which) {
      out.push_back({*block[which],
                     [which, &c, row](const at::Tensor& t) { return block_slot_views_of(t, which, c, row); }, true});
    }
  }
  return out;
}

// The new block's first values, the same wherever it lives: drawn per layer from a fixed
// generator (the output columns too, so that the block changes the loss at once).
void draw_block(LocalistModel& m, int64_t slot) {
  at::NoGradGuard no_grad;
  m.set_block_active(slot, true);
  for (size_t l = 0; l < m.layers.size(); ++l) {
    auto gen = at::detail::createCPUGenerator(100 + static_cast<uint64_t>(l));
    const auto values = at::empty({7, 256}, at::kFloat).normal_(0.0, 0.05, gen);
    if (!m.layers[l]->holds(slot)) continue;
    const auto v = block_slot_params(*m.layers[l], m.config(), slot);
    for (size_t j = 0; j < v.size(); ++j) v[j].copy_(values[j].narrow(0, 0, v[j].numel()).view_as(v[j]));
  }
}

at::Tensor flat_block(const LocalistModel& m, int64_t slot, bool grads = false) {
  std::vector<at::Tensor> flat;
  for (const auto& l : m.layers) {
    for (const auto& v : grads ? block_slot_grads(*l, m.config(), slot) : block_slot_params(*l, m.config(), slot)) {
      flat.push_back(v.detach().reshape({-1}).clone());
    }
  }
  return at::cat(flat);
}

at::Tensor router_grads(const LocalistModel& m) {
  std::vector<at::Tensor> flat;
  for (const auto& l : m.layers) flat.push_back(l->router_w.grad().reshape({-1}).clone());
  return at::cat(flat);
}

int64_t held_values(LocalistModel& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

double rel(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-6, b.abs().max().item<double>());
}

}  // namespace

TEST(ShardedTrial, EqualsTheTrialOnTheWholeModelAndItsBlockLivesOnItsOwner) {
  const auto world = localist::test::mpi_test_world();
  const int n = world->size();
  if (n < 2) GTEST_SKIP() << "needs 2 or more ranks";
  const int64_t bp = n == 4 ? 2 : n;  // 4 ranks: 2 replicas of 2, so a block's gradient is summed over dp too
  test::TempDir dir;                  // each rank its own copy of the data
  test::write_text(dir / "drama.txt", test::read_text(test::corpus("tinyshakespeare.txt")).substr(0, 60000));
  DataConfig data;
  data.shard_dir = dir / "shards";
  data.sources.push_back({"drama", dir / "drama.txt", "drama", "blank_line", 1.0, 0, true});
  prepare_shards(data, false, nullptr);
  const ModelConfig c = trial_config();
  const BatchReader reader(data, c.context, 5, 6);
  std::vector<SampleRef> held, pool;
  for (int64_t i = 0; i < 7; ++i) held.push_back(reader.sampler().sample(3, i));
  for (int64_t i = 0; i < 12; ++i) pool.push_back(reader.sampler().sample(4, i));
  const std::vector<double> dial{0.5, 0.8};
  const int64_t slot = 4;

  auto setup_for = [&](LocalistModel* m) {
    TrialSetup t;
    t.model = m, t.reader = &reader, t.source_domains = {"drama"};
    t.micro_batch = 2, t.batch = 6, t.seed = 9;  // micro-batches that do not divide a rank's windows
    return t;
  };
  // The reference: the whole model on this rank alone.
  LocalistModel whole(c, 258, 11);
  TrialSetup ws = setup_for(&whole);
  ws.ranks = local_communicator();
  const Trial reference(ws);
  const HeldoutBits ref_before = reference.heldout_bits(held, dial, RuleSet());
  draw_block(whole, slot);
  const std::vector<SampleRef> update(pool.begin(), pool.begin() + 6);
  reference.gradients(7, 0, trained(whole, slot), update, RuleSet(), dial);
  const auto ref_router = router_grads(whole), ref_block = flat_block(whole, slot, true);
  whole.zero_grad();
  reference.train(7, 3, trained(whole, slot), pool, RuleSet(), dial, 1e-2);
  const HeldoutBits ref_after = reference.heldout_bits(held, dial, RuleSet());

  for (const bool vocab : {false, true}) {
    SCOPED_TRACE(vocab ? "vocabulary parallel" : "blocks and FFN split");
    LocalistModel m(c, 258, 11);
    const GroupMesh mesh = group_mesh_make(world, bp, at::kCPU);
    std::vector<uint8_t> active(c.k_max, 0);
    for (int64_t s = 0; s < c.k_initial; ++s) active[s] = 1;
    BlockParallel blocks(mesh.bp, m, block_map_initial(active, static_cast<int32_t>(bp)), vocab);
    TrialSetup ss = setup_for(&m);
    ss.ranks = world;
    ss.sharding.shard = [&blocks] { return &blocks.shard(); };
    ss.sharding.same_blocks = mesh.dp;
    ss.sharding.dp_rank = mesh.dp_rank, ss.sharding.dp_size = mesh.dp_size;
    const Trial trial(ss);
    const int64_t share = held_values(m);

    const HeldoutBits before = trial.heldout_bits(held, dial, RuleSet());
    EXPECT_EQ(before.tokens, ref_before.tokens);
    for (size_t w = 0; w < held.size(); ++w) {
      EXPECT_NEAR(before.window_bits[w], ref_before.window_bits[w], 1e-5 * ref_before.window_bits[w]) << "window " << w;
    }
    // The trial's block on the rank the planner will give it, nowhere else.
    active[slot] = 1;
    const int32_t owner = block_map_plan(blocks.map(), active, static_cast<int32_t>(bp)).owner[slot];
    active[slot] = 0;
    blocks.hold_trial(slot, owner);
    draw_block(m, slot);
    for (const auto& l : m.layers) EXPECT_EQ(l->holds(slot), mesh.bp_rank == owner) << "rank " << world->rank();
    EXPECT_EQ(held_values(m), share);  // the trial allocates nothing whole
    trial.gradients(7, 0, trained(m, slot), update, RuleSet(), dial);
    EXPECT_LE(rel(router_grads(m), ref_router), 1e-5);
    if (mesh.bp_rank == owner) {
      EXPECT_LE(rel(flat_block(m, slot, true), ref_block), 1e-5);
    }
    m.zero_grad();
    trial.train(7, 3, trained(m, slot), pool, RuleSet(), dial, 1e-2);
    EXPECT_EQ(held_values(m), share);
    const HeldoutBits after = trial.heldout_bits(held, dial, RuleSet());
    EXPECT_GT(std::fabs(ref_after.mean - ref_before.mean), 1e-3);  // the trial changed something: not vacuous
    for (size_t w = 0; w < held.size(); ++w) {
      EXPECT_NEAR(after.window_bits[w], ref_after.window_bits[w], 1e-5 * ref_after.window_bits[w]) << "window " << w;
    }
    // Kept: the planner's map places it on the trial's rank, with its trained values.
    const auto trained_block = mesh.bp_rank == owner ? flat_block(m, slot) : at::Tensor();
    active[slot] = 1;
    blocks.apply(block_map_plan(blocks.map(), active, static_cast<int32_t>(bp)),
                 [](const at::Tensor&) { return std::vector<at::Tensor>{}; });
    for (const auto& l : m.layers) EXPECT_EQ(l->holds(slot), mesh.bp_rank == owner);
    if (mesh.bp_rank == owner) {
      EXPECT_TRUE(at::equal(flat_block(m, slot), trained_block));
    }
    EXPECT_EQ(held_values(m), share);
    const HeldoutBits placed = trial.heldout_bits(held, dial, RuleSet());
    EXPECT_NEAR(placed.mean, after.mean, 1e-6 * after.mean);
  }
}
