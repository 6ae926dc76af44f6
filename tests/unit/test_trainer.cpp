// test_trainer.cpp: LR schedules equal their closed forms; a short training run on the
// bundled Shakespeare lowers held-out cross-entropy below the unigram baseline
// (computed here independently from byte counts); checkpoints reload exactly; an
// asynchronous checkpoint holds the state of the step it was started at.
#include <ATen/ATen.h>
#include <torch/optim/adamw.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "data/prepare.h"
#include "tests/test_util.h"
#include "trainer/lr_schedule.h"
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_writer.h"
#include "trainer/trainer.h"

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
  plan.name = "t";
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

// The training step goes on while an asynchronous checkpoint is written: the files must
// hold the state at start(), equal bit for bit to a synchronous checkpoint of that state,
// however much the parameters and moments change before finish().
TEST(Checkpoint, AsynchronousWriteHoldsTheStateAtItsStart) {
  ModelConfig mc;
  mc.d_model = 32;
  mc.head_dim = 8;
  mc.context = 16;
  LocalistModel model(mc, 50, 3);
  torch::optim::AdamW opt(model.parameters(), torch::optim::AdamWOptions(1e-3));
  ForwardOptions fo;
  fo.dial = {0.5, 0.5};
  auto x = at::randint(50, {2, 16}, at::kLong);
  model.forward(x, fo).logits.pow(2).mean().backward();
  opt.step();

  test::TempDir root;
  std::vector<uint8_t> active(mc.k_max, 0);
  for (int64_t s : model.active_slots()) active[s] = 1;
  CheckpointWrite w;
  w.world = local_communicator();
  w.model = &model;
  w.optimizer = &opt;
  w.map = block_map_initial(active, 1);
  w.meta = CheckpointMeta{5, 100, 50, 3, "byte", "h", "byte"};
  w.config_yaml = "model: {}\n";
  w.run_dir = root / "sync";
  const auto sync = checkpoint_read(checkpoint_save(w));

  w.run_dir = root / "async";
  CheckpointWriter writer(true);
  writer.start(w);
  EXPECT_TRUE(writer.pending());
  {
    at::NoGradGuard no_grad;
    for (auto& p : model.parameters()) p.add_(1.0);  // the next training step, meanwhile
  }
  model.forward(x, fo).logits.pow(2).mean().backward();
  opt.step();
  const std::string dir = writer.finish();
  EXPECT_FALSE(writer.pending());
  const auto async = checkpoint_read(dir);
  ASSERT_EQ(async.tensors.size(), sync.tensors.size());
  for (const auto& [name, t] : sync.tensors) {
    ASSERT_TRUE(async.tensors.count(name)) << name;
    EXPECT_TRUE(at::equal(async.tensors.at(name), t)) << name;
  }
  ASSERT_TRUE(async.rng_cpu.defined());
  EXPECT_EQ(async.rng_cpu.size(0), 1);
  EXPECT_TRUE(at::equal(async.rng_cpu, sync.rng_cpu));
}
