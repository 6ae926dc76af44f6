// SPDX-License-Identifier: Apache-2.0
// test_job_plan.cpp: run/job_plan.h's inputs and decisions: the parameter shapes it counts
// with against a built model's own parameters, the smallest change it proposes, a mesh
// that does not fit the ranks. (What ranks of real runs held: e2e Cli and Pool tests.)
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/localist_model.h"
#include "run/job_plan.h"

TEST(JobPlan, ParameterShapesAreTheBuiltModelsParameters) {
  localist::ModelConfig a, b;
  b.d_model = 48, b.n_layers = 3, b.context = 40, b.heads_per_block = 2, b.head_dim = 8, b.k_initial = 3, b.k_max = 5;
  b.anchor_dim = 4, b.ffn_mult = 2;
  for (const auto& [c, vocab] : std::vector<std::pair<localist::ModelConfig, int64_t>>{{a, 258}, {b, 1000}}) {
    localist::LocalistModel model(c, vocab, 7);
    const auto shapes = localist::localist_parameter_shapes(c, vocab);
    const auto named = model.named_parameters();
    ASSERT_EQ(shapes.size(), named.size());
    for (size_t i = 0; i < shapes.size(); ++i) {
      EXPECT_EQ(shapes[i].name, named[i].key());
      EXPECT_EQ(shapes[i].shape, named[i].value().sizes().vec()) << shapes[i].name;
    }
  }
}

TEST(JobPlan, ProposesTheSmallestChangeThatFits) {
  localist::PlanInput in;
  in.vocab = 258;
  in.pool = localist::PoolConfig::single(in.train.global_batch);
  const localist::JobPlan free = localist::job_plan(in);
  ASSERT_TRUE(free.fits);
  const localist::RankPlan& r = free.llms.at(0).per_rank.at(0);
  ASSERT_LT(r.activations_checkpointed, r.activations);
  // Room for everything but the activations of every layer at once: checkpointing fits.
  in.memory = static_cast<double>(r.total() - r.activations + r.activations_checkpointed) / 0.9 + 1;
  EXPECT_FALSE(localist::job_plan(in).fits);
  EXPECT_EQ(localist::job_plan_smallest_fix(in), "train.activation_checkpointing: true");
  in.memory = 1000;  // nothing fits in a kilobyte
  EXPECT_EQ(localist::job_plan_smallest_fix(in), "");
}

TEST(JobPlan, AMeshThatDoesNotDivideTheRanksIsAConfigError) {
  localist::PlanInput in;
  in.vocab = 258;
  in.pool = localist::PoolConfig::single(in.train.global_batch);
  in.ranks = 3, in.block_parallel = 2;
  EXPECT_THROW(localist::job_plan(in), localist::ConfigError);
}
