// test_block_parallel.cpp: under mpirun, a model whose blocks and FFN are split over the
// ranks (each rank computes its blocks' heads and its part of the FFN's hidden units;
// partial outputs summed forward, input gradients summed backward) gives the same logits, loss and gradients as the whole
// model on one rank, in float64, with λ > 0 and both penalties in the loss; a block map
// change moves parameters and Adam moments bit for bit.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include "comm/launch_env.h"
#include "comm/mpi_communicator.h"
#include "tests/mpi/mpi_gtest_main.h"
#include "model/localist_model.h"
#include "trainer/block_parallel.h"
#include "trainer/checkpoint.h"

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
                                     at::Reduction::Sum) / 30.0;
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

// A new block map moves each moved block's parameters and Adam moments from the old
// owner to the new one bit for bit; the old owner's moments for it become zero, and
// the sharded model still computes what the whole model computes.
TEST(BlockParallel, AMapChangeMovesParametersAndMomentsBitForBit) {
  ModelConfig c;
  c.d_model = 16, c.n_layers = 2, c.context = 10, c.heads_per_block = 2, c.head_dim = 4;
  c.k_max = 5, c.k_initial = 5, c.anchor_dim = 4, c.ffn_mult = 2;
  LocalistModel m(c, 30, 11);
  const auto world = localist::test::mpi_test_world();
  std::vector<uint8_t> active(c.k_max, 1);
  BlockParallel bp(world, m, block_map_initial(active, world->size()));
  torch::optim::AdamW opt(m.parameters(), torch::optim::AdamWOptions(1e-2));
  const MomentsOf moments = adamw_moments(opt);
  auto gen = at::detail::createCPUGenerator(5);
  const auto x = at::randint(30, {2, 10}, gen, at::kLong), y = at::randint(30, {2, 10}, gen, at::kLong);
  ForwardOptions o;
  o.dial = {0.5, 0.5};
  auto train_step = [&] {
    opt.zero_grad();
    o.shard = &bp.shard();
    const auto r = m.forward(x, o);
    // Sequence parallel: this rank's positions' share of the mean loss.
    const auto [t0, t1] = bp.shard().seq_range(10);
    (at::cross_entropy_loss(r.logits.reshape({-1, 30}), y.narrow(1, t0, t1 - t0).reshape({-1}), {},
                            at::Reduction::Sum) / 20.0).backward();
    // The replicated parameters' gradients are this rank's positions' part.
    for (auto& p : m.parameters()) {
      if (bp.is_split_param(p) || !p.grad().defined()) continue;
      auto g = p.grad();
      world->all_reduce(g, ReduceOp::kSum, "replicated gradient");
    }
    opt.step();
    bp.reassemble();
    return r.logits.detach();
  };
  for (int i = 0; i < 2; ++i) train_step();

  // Every rank's moments, gathered before the move: the owners' rows are the truth.
  std::vector<at::Tensor> before;  // per layer: exp_avg and exp_avg_sq of qkv_w, qkv_b, out_w
  for (auto& l : m.layers) {
    for (const auto& t : {l->qkv_w, l->qkv_b, l->out_w}) {
      for (const auto& mt : moments(t)) before.push_back(world->all_gather(mt.contiguous(), "test moments"));
    }
  }
  const auto params_before = world->all_gather(m.layers[1]->qkv_w.detach().contiguous(), "test params");
  BlockMap next = bp.map();
  ++next.epoch;
  for (auto& w : next.owner) w = (w + 1) % world->size();
  const auto old_map = bp.map();
  bp.apply(next, moments);
  EXPECT_EQ(bp.map(), next);
  if (world->size() > 1) {
    EXPECT_FALSE(bp.shard().owned_slots == old_map.owned_by(world->rank()));
  }
  size_t i = 0;
  for (auto& l : m.layers) {
    std::vector<std::vector<at::Tensor>> mt;
    for (const auto& t : {l->qkv_w, l->qkv_b, l->out_w}) mt.push_back(moments(t));
    for (size_t k = 0; k < 2; ++k) {
      for (int64_t slot = 0; slot < c.k_max; ++slot) {
        const int from = old_map.owner[slot], to = next.owner[slot], me = world->rank();
        const auto mine = block_slot_views(mt[0][k], mt[1][k], mt[2][k], c, slot);
        const auto ref = block_slot_views(before[i + k][from], before[i + 2 + k][from], before[i + 4 + k][from], c, slot);
        for (size_t v = 0; v < mine.size(); ++v) {
          if (me == to) {
            EXPECT_TRUE(at::equal(mine[v], ref[v])) << "slot " << slot << " view " << v;
            EXPECT_GT(ref[v].abs().sum().item<double>(), 0.0);  // moments exist: the check is not vacuous
          } else {
            EXPECT_EQ(mine[v].abs().sum().item<double>(), 0.0) << "slot " << slot << " kept by rank " << me;
          }
        }
      }
    }
    i += 6;
  }
  // Parameters are identical on every rank before and after.
  EXPECT_TRUE(at::equal(params_before[0], m.layers[1]->qkv_w.detach()));
  // The sharded model under the new map still equals the whole model.
  ForwardOptions whole;
  whole.dial = o.dial;
  const auto ref_logits = m.forward(x, whole).logits.detach();
  o.shard = &bp.shard();
  const auto [t0, t1] = bp.shard().seq_range(10);
  EXPECT_LE((m.forward(x, o).logits - ref_logits.narrow(1, t0, t1 - t0)).abs().max().item<double>(), 1e-5);
}
