// test_block_parallel.cpp: under mpirun, a model whose blocks are split over the ranks
// (each rank computes its blocks' heads; partial outputs summed forward, input
// gradients summed backward) gives the same logits, loss and gradients as the whole
// model on one rank, in float64, with λ > 0 and both penalties in the loss.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "comm/launch_env.h"
#include "comm/mpi_communicator.h"
#include "tests/mpi/mpi_gtest_main.h"
#include "model/localist_model.h"
#include "trainer/block_parallel.h"

using namespace localist;

namespace {

at::Tensor loss_of(const ForwardResult& r, const at::Tensor& y, const std::vector<double>& dial) {
  auto loss = at::cross_entropy_loss(r.logits.reshape({-1, r.logits.size(-1)}), y.reshape({-1}));
  for (size_t l = 0; l < r.omega.size(); ++l) {
    loss = loss + dial[l] * (0.3 * r.omega[l] - 0.2 * r.mutual_info[l]) / static_cast<double>(r.omega.size());
  }
  return loss;
}
}  // namespace

TEST(BlockParallel, ShardedModelEqualsTheWholeModel) {
  ModelConfig c;
  c.d_model = 16, c.n_layers = 2, c.context = 10, c.heads_per_block = 2, c.head_dim = 4;
  c.k_max = 4, c.k_initial = 4, c.anchor_dim = 4, c.ffn_mult = 2;
  LocalistModel m(c, 30, 11);
  m.to(at::kDouble);
  auto gen = at::detail::createCPUGenerator(3);
  const auto x = at::randint(30, {3, 10}, gen, at::kLong), y = at::randint(30, {3, 10}, gen, at::kLong);
  const std::vector<double> dial{0.6, 0.9};
  ForwardOptions o;
  o.dial = dial;
  o.penalties = true;

  const auto ref = m.forward(x, o);
  loss_of(ref, y, dial).backward();
  std::map<std::string, at::Tensor> ref_grads;
  for (const auto& p : m.named_parameters()) ref_grads[p.key()] = p.value().grad().clone();
  m.zero_grad();

  const auto g_world = localist::test::mpi_test_world();
  const BlockShard shard = block_shard_make(g_world, block_slots_round_robin(c.k_max, g_world->rank(), g_world->size()));
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
    // Block parameters (and the router, used through each rank's blocks) hold partial
    // gradients that sum to the whole; everything else must already be whole.
    const bool partial = name.find("qkv_") != std::string::npos || name.find("out_weight") != std::string::npos ||
                         name.find("router_weight") != std::string::npos;
    if (partial) g_world->all_reduce(g, ReduceOp::kSum, "test gradient sum");
    EXPECT_LE((g - ref_grads[name]).abs().max().item<double>(), 1e-12) << name;
  }
}
