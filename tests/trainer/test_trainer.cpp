// SPDX-License-Identifier: Apache-2.0
// test_trainer.cpp: LR schedules equal their closed forms; a short training run on the
// bundled Shakespeare lowers held-out cross-entropy below the unigram baseline
// (computed here independently from byte counts) and its checkpoints reload exactly.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "checkpoint/checkpoint.h"
#include "data/prepare.h"
#include "run/train_run.h"
#include "tests/test_util.h"
#include "trainer/lr_schedule.h"

using namespace localist;

TEST(LrSchedule, ClosedForms) {
  LrSchedule s;
  s.lr = 1.0, s.min_lr = 0.1, s.warmup_steps = 10, s.total_steps = 110;
  EXPECT_DOUBLE_EQ(s.at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  s.kind = "constant";
  EXPECT_DOUBLE_EQ(s.at(80), 1.0);
  s.kind = "linear";
  EXPECT_NEAR(s.at(10 + 99 / 2.0), 0.55, 1e-12 + 0.01);  // halfway (integer step)
  EXPECT_DOUBLE_EQ(s.at(109), 0.1);
  s.kind = "cosine";
  EXPECT_NEAR(s.at(10), 1.0, 1e-12);
  EXPECT_NEAR(s.at(109), 0.1, 1e-12);
  EXPECT_NEAR(s.at(43), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 33.0 / 99.0)), 1e-12);
  s.kind = "wsd";
  s.decay_fraction = 0.2;  // decay over steps 88..109
  EXPECT_DOUBLE_EQ(s.at(50), 1.0);
  EXPECT_DOUBLE_EQ(s.at(87), 1.0);
  EXPECT_NEAR(s.at(109), 0.1, 1e-12);
  EXPECT_NEAR(s.at(98), 1.0 - 0.9 * 10.0 / 21.0, 1e-12);
}

TEST(Trainer, ShortRunBeatsTheUnigramBaselineAndCheckpointsReload) {
  test::TempDir dir;
  const std::string text = test::read_text(test::corpus("tinyshakespeare.txt"));
  test::write_text(dir / "train.txt", text.substr(0, 900000));
  test::write_text(dir / "heldout.txt", text.substr(900000));
  TrainPlan plan;
  plan.run_dir = dir / "run";
  plan.config_yaml = "# test\n";
  plan.seed = 3;
  plan.data.shard_dir = dir / "shards";
  plan.data.sources.push_back({"train", dir / "train.txt", "drama", "blank_line", 1.0, 0, true});
  plan.data.sources.push_back({"heldout", dir / "heldout.txt", "drama", "blank_line", 1.0, 0, false});
  prepare_shards(plan.data, false, nullptr);
  plan.model.d_model = 64;
  plan.model.n_layers = 2;
  plan.model.context = 64;
  plan.model.head_dim = 16;
  plan.model.k_initial = 4;
  plan.model.k_max = 4;
  plan.model.anchor_dim = 4;
  plan.train.steps = 150;
  plan.train.global_batch = 16;
  plan.train.micro_batch = 8;
  plan.train.lr.lr = 3e-3;
  plan.train.lr.min_lr = 3e-4;
  plan.train.lr.total_steps = 150;
  plan.train.eval_every = 0;
  plan.train.eval_windows = 24;
  plan.train.dial.value = {0.5};
  std::filesystem::create_directories(plan.run_dir);
  const TrainSummary s = train_run(plan);
  ASSERT_TRUE(s.evaluated);

  // Unigram baseline: held-out bytes coded with the training bytes' frequencies (add-one).
  std::vector<double> counts(256, 1.0);
  for (unsigned char ch : text.substr(0, 900000)) counts[ch] += 1;
  double total = 0;
  for (double c : counts) total += c;
  const std::string held = text.substr(900000, 24 * 64);
  double unigram = 0;
  for (unsigned char ch : held) unigram -= std::log(counts[ch] / total);
  unigram /= held.size();
  EXPECT_LT(s.final_eval.ce_nats, unigram - 0.4) << "unigram baseline " << unigram << " nats";
  EXPECT_EQ(s.final_eval.bound_epsilon_holds, 1.0);
  EXPECT_EQ(s.final_eval.bound_entropy_holds, 1.0);
  EXPECT_EQ(s.final_eval.bound_delta_holds, 1.0);
  EXPECT_TRUE(std::filesystem::exists(plan.run_dir + "/metrics.jsonl"));

  // The checkpoint reloads to a model with identical outputs.
  const std::string ckpt = checkpoint_resolve(plan.run_dir);
  EXPECT_EQ(ckpt, s.checkpoint);
  const auto contents = checkpoint_read(ckpt);
  auto a = checkpoint_model(contents, plan.model, at::kCPU);
  auto b = checkpoint_model(contents, plan.model, at::kCPU);
  const auto x = at::randint(256, {2, 64}, at::kLong);
  ForwardOptions o;
  o.dial = {0.3, 0.3};
  a->eval();
  b->eval();
  EXPECT_TRUE(at::equal(a->forward(x, o).logits, b->forward(x, o).logits));
  LocalistModel fresh(plan.model, 258, 3);
  EXPECT_FALSE(at::equal(fresh.forward(x, o).logits, a->forward(x, o).logits));
}
