// SPDX-License-Identifier: Apache-2.0
// test_block_parallel.cpp: under mpirun, a model whose blocks and FFN are split over the
// ranks (each rank computes its blocks' heads and its part of the FFN's hidden units;
// partial outputs summed forward, input gradients summed backward) gives the same logits, loss and gradients as the
// whole model on one rank, in float64, with λ > 0 and both penalties in the loss; a rank stores exactly its share
// (counted); a block map change moves parameters and Adam moments bit for bit.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include "checkpoint/checkpoint.h"
#include "comm/launch_env.h"
#include "comm/mpi_communicator.h"
#include "model/localist_model.h"
#include "parallel/block_parallel.h"
#include "parallel/block_slots.h"
#include "tests/block_parallel_util.h"
#include "tests/main/mpi_gtest_main.h"

using namespace localist;

namespace {

at::Tensor loss_of(const ForwardResult& r, const at::Tensor& y, const std::vector<double>& dial) {
  auto loss = at::cross_entropy_loss(r.logits.reshape({-1, r.logits.size(-1)}), y.reshape({-1}));
  for (size_t l = 0; l < r.omega.size(); ++l) {
    loss = loss + dial[l] * (0.3 * r.omega[l] - 0.2 * r.mutual_info[l]) / static_cast<double>(r.omega.size());
  }
  return loss;
}

// The float64 reference both split tests compare with: the whole model's forward and
// gradients on one rank, λ > 0 and both penalties in the loss.
struct WholeModel {
  ModelConfig c;
  std::unique_ptr<LocalistModel> m;
  at::Tensor x, y;
  std::vector<double> dial{0.6, 0.9};
  ForwardOptions o;
  ForwardResult ref;
  std::map<std::string, at::Tensor> ref_grads;
  WholeModel() {
    c.d_model = 16, c.n_layers = 2, c.context = 10, c.heads_per_block = 2, c.head_dim = 4;
    c.k_max = 4, c.k_initial = 4, c.anchor_dim = 4, c.ffn_mult = 2;
    m = std::make_unique<LocalistModel>(c, 30, 11);
    m->to(at::kDouble);
    auto gen = at::detail::createCPUGenerator(3);
    x = at::randint(30, {3, 10}, gen, at::kLong), y = at::randint(30, {3, 10}, gen, at::kLong);
    o.dial = dial;
    o.penalties = true;
    ref = m->forward(x, o);
    loss_of(ref, y, dial).backward();
    for (const auto& p : m->named_parameters()) ref_grads[p.key()] = p.value().grad().clone();
    m->zero_grad();
  }
};

}  // namespace

TEST(BlockParallel, ShardedModelEqualsTheWholeModel) {
  WholeModel w;
  const ModelConfig& c = w.c;
  LocalistModel& m = *w.m;
  const auto &x = w.x, &y = w.y;
  const ForwardResult& ref = w.ref;
  const auto& dial = w.dial;
  auto& ref_grads = w.ref_grads;
  ForwardOptions o = w.o;

  const auto g_world = localist::test::mpi_test_world();
  // Blocks and FFN split (the FFN's 32 hidden units in contiguous parts; 3 ranks: 10, 11, 11).
  const BlockShard shard = block_shard_make(
      g_world, block_map_initial(std::vector<uint8_t>(c.k_max, 1), g_world->size()).owned_by(g_world->rank()),
      c.ffn_mult * c.d_model);
  EXPECT_LT(shard.ffn_size, c.ffn_mult * c.d_model);
  o.shard = &shard;
  const auto got = m.forward(x, o);
  EXPECT_LE((got.logits - ref.logits).abs().max().item<double>(), 1e-12);
  for (int l = 0; l < 2; ++l) {
    EXPECT_NEAR(got.omega[l].item<double>(), ref.omega[l].item<double>(), 1e-12);
    EXPECT_NEAR(got.mutual_info[l].item<double>(), ref.mutual_info[l].item<double>(), 1e-12);
  }
  loss_of(got, y, dial).backward();
  for (const auto& p : m.named_parameters()) {
    auto g = p.value().grad().clone();
    const std::string& name = p.key();
    // Block and FFN parameters (and the router, used through each rank's blocks) hold
    // partial gradients that sum to the whole; everything else must already be whole.
    const bool partial = name.find("qkv_") != std::string::npos || name.find("out_weight") != std::string::npos ||
                         name.find("router_weight") != std::string::npos || name.find("fc_") != std::string::npos ||
                         name.find("proj_weight") != std::string::npos;
    if (partial) g_world->all_reduce(g, ReduceOp::kSum, "test gradient sum");
    EXPECT_LE((g - ref_grads[name]).abs().max().item<double>(), 1e-12) << name;
  }
}

// Sequence parallel on top (what the trainer runs under bp > 1): each rank embeds, norms
// and scores its part of the positions (10 positions on 3 ranks: 3, 3, 4); its logits
// are the whole model's at those positions, and every gradient summed over the ranks is
// the whole model's, in float64.
TEST(BlockParallel, SequenceParallelEqualsTheWholeModel) {
  WholeModel w;
  const ModelConfig& c = w.c;
  LocalistModel& m = *w.m;
  const auto &x = w.x, &y = w.y;
  const ForwardResult& ref = w.ref;
  const auto& dial = w.dial;
  auto& ref_grads = w.ref_grads;
  ForwardOptions o = w.o;

  const auto world = localist::test::mpi_test_world();
  const BlockShard shard = block_shard_make(
      world, block_map_initial(std::vector<uint8_t>(c.k_max, 1), world->size()).owned_by(world->rank()),
      c.ffn_mult * c.d_model, /*sequence_parallel=*/true);
  ASSERT_EQ(shard.sequence_parallel(), world->size() > 1);
  o.shard = &shard;
  const auto got = m.forward(x, o);
  const auto [t0, t1] = shard.seq_range(10);
  EXPECT_LE((got.logits - ref.logits.narrow(1, t0, t1 - t0)).abs().max().item<double>(), 1e-12);
  // This rank's share of the mean cross-entropy, plus the penalties (whole on every rank).
  auto loss = at::cross_entropy_loss(got.logits.reshape({-1, 30}), y.narrow(1, t0, t1 - t0).reshape({-1}), {},
                                     at::Reduction::Sum) /
              30.0;
  for (size_t l = 0; l < got.omega.size(); ++l) {
    EXPECT_NEAR(got.omega[l].item<double>(), ref.omega[l].item<double>(), 1e-12);
    loss = loss + dial[l] * (0.3 * got.omega[l] - 0.2 * got.mutual_info[l]) / static_cast<double>(got.omega.size());
  }
  loss.backward();
  for (const auto& p : m.named_parameters()) {
    auto g = p.value().grad().clone();
    world->all_reduce(g, ReduceOp::kSum, "test gradient sum");
    EXPECT_LE((g - ref_grads[p.key()]).abs().max().item<double>(), 1e-12) << p.key();
  }
}

// Each rank stores only its share: its blocks' rows (block_map_capacity slots) and its
// FFN part, counted exactly; gradients flow into the shares alone, equal to the whole
// model's rows of them (float64, 1e-12); assembling gives every rank the whole model.
TEST(BlockParallel, ARankHoldsExactlyItsSharesAndTheyComputeTheWholeModel) {
  WholeModel w;
  const ModelConfig& c = w.c;
  const auto world = localist::test::mpi_test_world();
  const int bp_size = world->size();
  // Without and with vocabulary parallelism (the embedding and the tied head split by rows).
  for (const bool asked : {false, true}) {
    SCOPED_TRACE(asked ? "vocabulary parallel" : "blocks and FFN");
    const bool vocab = asked && bp_size > 1;
    LocalistModel m(c, 30, 11);
    m.to(at::kDouble);
    const BlockMap map = block_map_initial(std::vector<uint8_t>(c.k_max, 1), bp_size);
    BlockParallel bp(world, m, map, asked);
    ASSERT_EQ(bp.shard().vocab_parallel(), vocab);
    // Counted: replicated tensors whole, block tensors capacity slots, FFN this rank's
    // units, the embedding all 30 rows or this rank's.
    const int64_t d = c.d_model, n = c.heads_per_block * c.head_dim, f = c.ffn_mult * d;
    const int64_t cap = block_map_capacity(c.k_max, bp_size);
    const auto [a, b] = block_parallel_ffn_range(f, world->rank(), bp_size);
    const auto [v0, v1] =
        vocab ? block_parallel_ffn_range(30, world->rank(), bp_size) : std::pair<int64_t, int64_t>{0, 30};
    const int64_t per_layer_replicated = 2 * d + d + c.anchor_dim * d + 2 * d + d;  // ln1, out_b, router, ln2, proj_b
    const int64_t expected =
        (v1 - v0) * d + c.context * d + 2 * d +
        c.n_layers * (per_layer_replicated + cap * (3 * n * d + 3 * n + d * n) + (b - a) * (2 * d + 1));
    int64_t held = 0;
    for (const auto& p : m.parameters()) held += p.numel();
    EXPECT_EQ(held, expected);
    if (bp_size > 1) EXPECT_LT(held, w.m->parameter_count());
    for (const auto& l : m.layers) {
      EXPECT_EQ(l->qkv_w.size(0), 3 * cap * n);
      for (int64_t s = 0; s < c.k_max; ++s) EXPECT_EQ(l->slot_row[s] >= 0, map.owner[s] == world->rank()) << s;
    }
    ForwardOptions o = w.o;
    o.shard = &bp.shard();
    const auto got = m.forward(w.x, o);
    const auto [t0, t1] = bp.shard().seq_range(10);
    at::Tensor ce;
    if (vocab) {
      // This rank's vocabulary rows of every position; the loss over the whole vocabulary.
      EXPECT_LE((got.logits - w.ref.logits.narrow(2, v0, v1 - v0)).abs().max().item<double>(), 1e-12);
      ce = bp.shard().vocab_cross_entropy(got.logits, w.y, -100).sum() / 30.0;
      const auto ref_ce = at::cross_entropy_loss(w.ref.logits.reshape({-1, 30}), w.y.reshape({-1}));
      EXPECT_NEAR(ce.item<double>(), ref_ce.item<double>(), 1e-12);
    } else {
      EXPECT_LE((got.logits - w.ref.logits.narrow(1, t0, t1 - t0)).abs().max().item<double>(), 1e-12);
      ce = at::cross_entropy_loss(got.logits.reshape({-1, 30}), w.y.narrow(1, t0, t1 - t0).reshape({-1}), {},
                                  at::Reduction::Sum) /
           30.0;
    }
    auto loss = ce;
    for (size_t l = 0; l < got.omega.size(); ++l) {
      loss = loss + w.dial[l] * (0.3 * got.omega[l] - 0.2 * got.mutual_info[l]) / static_cast<double>(got.omega.size());
    }
    loss.backward();
    // A share's gradient is the whole model's gradient of those rows, on this rank alone.
    for (size_t l = 0; l < m.layers.size(); ++l) {
      const auto& L = *m.layers[l];
      const std::string pre = "layer" + std::to_string(l) + ".";
      for (int64_t s = 0; s < c.k_max; ++s) {
        if (L.slot_row[s] < 0) continue;
        const auto mine = block_slot_grads(L, c, s);
        const auto ref = block_slot_views(w.ref_grads[pre + "qkv_weight"], w.ref_grads[pre + "qkv_bias"],
                                          w.ref_grads[pre + "out_weight"], c, s);
        for (size_t v = 0; v < mine.size(); ++v) EXPECT_LE((mine[v] - ref[v]).abs().max().item<double>(), 1e-12);
      }
      EXPECT_LE((L.fc_w.grad() - w.ref_grads[pre + "fc_weight"].narrow(0, a, b - a)).abs().max().item<double>(), 1e-12);
      EXPECT_LE((L.proj_w.grad() - w.ref_grads[pre + "proj_weight"].narrow(1, a, b - a)).abs().max().item<double>(),
                1e-12);
    }
    if (vocab) {
      EXPECT_LE((m.wte.grad() - w.ref_grads["wte"].narrow(0, v0, v1 - v0)).abs().max().item<double>(), 1e-12);
    }
    // Assembled, every rank holds the whole model, equal to the reference's parameters.
    bp.assemble();
    for (const auto& p : m.named_parameters()) {
      EXPECT_TRUE(at::equal(p.value(), w.m->named_parameters()[p.key()])) << p.key();
    }
    EXPECT_LE((m.forward(w.x, w.o).logits - w.ref.logits).abs().max().item<double>(), 1e-12);
    bp.release();
    held = 0;
    for (const auto& p : m.parameters()) held += p.numel();
    EXPECT_EQ(held, expected);
    // Assembled on rank 0 alone (evaluation): the others keep only their shares.
    bp.assemble_at(0);
    EXPECT_EQ(bp.assembled(), world->rank() == 0);
    held = 0;
    for (const auto& p : m.named_parameters()) {
      held += p.value().numel();
      if (world->rank() == 0) EXPECT_TRUE(at::equal(p.value(), w.m->named_parameters()[p.key()])) << p.key();
    }
    EXPECT_EQ(held, world->rank() == 0 ? w.m->parameter_count() : expected);
    bp.release();
  }
}

// The block-move check (tests/block_parallel_util.h) on the MPI backend, 2 heads a block.
TEST(BlockParallel, AMapChangeMovesParametersAndMomentsBitForBit) {
  localist::test::expect_block_moves_bit_for_bit(localist::test::mpi_test_world(), {2, 10, 30});
}

// A block switched on (a recruitment) while the model is assembled lands on its planned
// owner only: the owner holds its parameters with zero moments, no other rank holds it,
// and the shares still compute what the assembled model computes.
TEST(BlockParallel, ARecruitedBlockExistsOnlyOnItsOwner) {
  ModelConfig c;
  c.d_model = 16, c.n_layers = 2, c.context = 10, c.heads_per_block = 2, c.head_dim = 4;
  c.k_max = 6, c.k_initial = 3, c.anchor_dim = 4, c.ffn_mult = 2;
  LocalistModel m(c, 30, 11);
  const auto world = localist::test::mpi_test_world();
  std::vector<uint8_t> active{1, 1, 1, 0, 0, 0};
  BlockParallel bp(world, m, block_map_initial(active, world->size()));
  torch::optim::AdamW opt(m.parameters(), torch::optim::AdamWOptions(1e-2));
  const MomentsOf moments = adamw_moments(opt);
  auto gen = at::detail::createCPUGenerator(5);
  const auto x = at::randint(30, {2, 10}, gen, at::kLong), y = at::randint(30, {2, 10}, gen, at::kLong);
  ForwardOptions o;
  o.dial = {0.5, 0.5};
  // Moments exist, so the new block's zero moments are a real check.
  localist::test::sharded_train_step(m, bp, opt, *world, x, y, o.dial);
  const auto [t0, t1] = bp.shard().seq_range(10);
  int64_t held_before = 0;
  for (const auto& p : m.parameters()) held_before += p.numel();

  bp.assemble();
  at::NoGradGuard no_grad;
  m.set_block_active(4, true);
  for (auto& l : m.layers) {
    for (auto& v : block_slot_params(*l, c, 4)) v.fill_(0.25);  // what a recruitment would draw
  }
  active[4] = 1;
  const BlockMap next = block_map_plan(bp.map(), active, world->size());
  bp.apply(next, moments);
  bp.release();
  const int owner = next.owner[4];
  int64_t held_after = 0;
  for (const auto& p : m.parameters()) held_after += p.numel();
  EXPECT_EQ(held_after, held_before);  // a rank's storage is its share, whatever it owns
  for (auto& l : m.layers) {
    EXPECT_EQ(l->slot_row[4] >= 0, world->rank() == owner) << "rank " << world->rank();
    if (world->rank() != owner) {
      // Its values are nowhere in this rank's block tensors.
      EXPECT_FALSE(l->qkv_w.eq(0.25).any().item<bool>());
      continue;
    }
    for (const auto& v : block_slot_params(*l, c, 4)) EXPECT_TRUE(v.eq(0.25).all().item<bool>());
    for (const auto& v : block_slot_moments(*l, c, 4, moments)) EXPECT_EQ(v.abs().sum().item<double>(), 0.0);
  }
  o.shard = &bp.shard();
  const auto sharded = m.forward(x, o).logits;
  bp.assemble();
  ForwardOptions whole;
  whole.dial = o.dial;
  const auto ref = m.forward(x, whole).logits;
  bp.release();
  EXPECT_LE((sharded - ref.narrow(1, t0, t1 - t0)).abs().max().item<double>(), 1e-5);
}
