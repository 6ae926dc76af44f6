// SPDX-License-Identifier: Apache-2.0
// test_simulated_scale.cpp: the design checked beyond the machines we have (#38): a pool
// of 4 LLMs trained for two steps on 64 ranks (LOCALIST_SIMULATED_RANKS: any multiple of
// 4) that are threads of this process on the in-process communicator, through the same
// train_run as `localist train`. Every rank's plan agrees; the pool map and each rank's
// mesh position, blocks and bytes are what `localist plan` said; the losses equal one rank's.
// Limits: dropout 0 (the ranks would share LibTorch's default generator); tiny model.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <utility>

#include "checkpoint/checkpoint.h"
#include "comm/in_process_group.h"
#include "core/process_memory.h"
#include "data/prepare.h"
#include "launch/plan_command.h"
#include "launch/run_config.h"
#include "launch/train_command.h"
#include "pool/pool_map.h"
#include "tests/e2e/plan_check.h"
#include "tests/test_util.h"

namespace localist {
namespace {

// A pool of main and three specialists, all existing from step 0, bp 4 with ZeRO-1,
// activation checkpointing and the embedding split by vocabulary; batches grow with the
// simulated world so that every data-parallel rank has rows (uneven slices included).
std::string pool_yaml(const test::TempDir& dir, int simulated, int bp) {
  const int64_t main_batch = std::max(16, simulated / 4), batch = main_batch / 2;
  std::ostringstream y;
  y << "run: {name: scale, dir: " << (dir / "run") << ", seed: 7}\n"
    << "data:\n  shard_dir: " << (dir / "shards") << "\n  tokenizer: {kind: byte}\n  sources:\n";
  for (const char* d : {"encyclopedia", "articles", "drama", "verse"}) {
    y << "    - {name: " << d << ", path: " << (dir / (std::string(d) + ".txt")) << ", domain: " << d
      << ", split: blank_line}\n";
  }
  y << "model: {d_model: 32, n_layers: 2, context: 32, heads_per_block: 1, head_dim: 8, k_initial: 4, k_max: 8,"
       " anchor_dim: 4}\n"
    << "train: {steps: 2, global_batch: " << main_batch
    << ", micro_batch: 2, lr: 3.0e-3, warmup_steps: 0, dial: 0.5, log_every: 1,"
    << " eval_every: 0, activation_checkpointing: true, async_checkpoint: false}\n"
    << "distributed: {block_parallel: " << bp << ", zero: 1, vocab_parallel: on}\n"
    << "pool:\n  llms:\n";
  for (const char* d : {"articles", "drama", "verse"}) {
    y << "    - {name: " << d << ", domains: [" << d << "], branch_from: main, branch_step: 0, global_batch: " << batch
      << "}\n";
  }
  return y.str();
}

// (LLM, step) -> loss of every step record.
std::map<std::pair<std::string, int64_t>, double> losses(const std::string& metrics) {
  std::map<std::pair<std::string, int64_t>, double> out;
  std::istringstream lines(test::read_text(metrics));
  for (std::string line; std::getline(lines, line);) {
    const auto r = nlohmann::json::parse(line);
    if (r.value("event", "") == "step")
      out[{r.at("llm").get<std::string>(), r.at("step").get<int64_t>()}] = r.at("loss");
  }
  return out;
}

// Trains the config of the simulated world on `world` ranks (threads on the in-process
// communicator; one rank: the plain single-process path) and returns its run directory.
std::string train_on(const test::TempDir& dir, int simulated, int world, std::vector<std::string>* plans) {
  const std::string file = dir / ("scale-" + std::to_string(world) + ".yaml");
  test::write_text(file, pool_yaml(dir, simulated, world > 1 ? 4 : 1));
  const std::string run = dir / ("run-" + std::to_string(world));
  std::filesystem::create_directories(run);  // as `localist train` does before train_run
  const RunConfig cfg = run_config_load(file, world, {"run.dir=" + run});
  const std::string effective = run_config_to_yaml(cfg);
  const TrainPlan base = train_plan_from_config(cfg, effective, TrainArgs{});
  if (world == 1) {
    train_run(base);
    return run;
  }
  plans->assign(static_cast<size_t>(world), "");
  const auto outcomes = in_process_run(
      world,
      [&](std::shared_ptr<Communicator> comm) {
        PlanArgs args;
        args.ranks = world;
        (*plans)[static_cast<size_t>(comm->rank())] = job_plan_json(job_plan(plan_input_from_config(cfg, args))).dump();
        TrainPlan p = base;
        p.world = std::move(comm);
        p.local_rank = p.world->rank();
        p.local_ranks = world;
        p.timeout_s = p.startup_timeout_s = 120;  // a rank that fails ends the others' waits
        train_run(p);
      },
      300.0);
  for (size_t r = 0; r < outcomes.size(); ++r) EXPECT_TRUE(outcomes[r].ok) << "rank " << r << ": " << outcomes[r].error;
  return run;
}

TEST(SimulatedScale, EveryRankOfAPoolAgreesWithThePlanAndTheLossesEqualOneRanks) {
  const char* env = std::getenv("LOCALIST_SIMULATED_RANKS");
  const int world = env ? std::atoi(env) : 64;
  ASSERT_TRUE(world >= 4 && world % 4 == 0) << "LOCALIST_SIMULATED_RANKS must be a multiple of 4, not " << env;
  test::TempDir dir;
  const std::string wiki = test::read_text(test::corpus("wikitext2-valid.txt"));
  const std::string plays = test::read_text(test::corpus("tinyshakespeare.txt"));
  test::write_text(dir / "encyclopedia.txt", wiki.substr(0, 60000));
  test::write_text(dir / "articles.txt", wiki.substr(60000, 60000));
  test::write_text(dir / "drama.txt", plays.substr(0, 60000));
  test::write_text(dir / "verse.txt", plays.substr(60000, 60000));
  const auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::warn);  // 64 ranks' start-up lines add nothing here
  {
    test::write_text(dir / "prepare.yaml", pool_yaml(dir, world, 1));
    const RunConfig cfg = run_config_load(dir / "prepare.yaml", 1);
    prepare_shards(cfg.data, false, nullptr);
  }
  std::vector<std::string> plans;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string many = train_on(dir, world, world, &plans);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string one = train_on(dir, world, 1, nullptr);
  spdlog::set_level(level);
  std::cout << world << " ranks in one process: trained in " << seconds << " s, peak RSS "
            << process_memory().peak_rss_bytes / 1e9 << " GB\n";
  RecordProperty("seconds", std::to_string(seconds));

  // Every rank planned the same job; its pool map is the one the run trained under.
  ASSERT_EQ(plans.size(), static_cast<size_t>(world));
  for (int r = 1; r < world; ++r) ASSERT_EQ(plans[r], plans[0]) << "rank " << r << "'s plan differs from rank 0's";
  const auto plan = nlohmann::json::parse(plans[0]);
  const auto contents = checkpoint_read(checkpoint_resolve(many));
  const PoolMap map = PoolMap::from_json(contents.state.at("pool_map"));
  EXPECT_EQ(map.describe({"main", "articles", "drama", "verse"}), plan.at("pool_map").get<std::string>());
  for (const auto& l : plan.at("llms")) EXPECT_EQ(l.at("bp"), 4) << l.dump();

  // Each rank's place in its LLM's mesh, its blocks and the bytes it holds: as planned.
  size_t pairs = 0;  // (rank, LLM): on 64 ranks each rank trains one LLM; on 8 all share
  for (const auto& l : plan.at("llms")) pairs += l.at("per_rank").size();
  EXPECT_GE(pairs, static_cast<size_t>(world));
  EXPECT_EQ(test::expect_plan_matches_run(plans[0], many + "/metrics.jsonl", 0.0), static_cast<int>(pairs));

  // The losses of every LLM at both steps: those of one rank.
  const auto want = losses(one + "/metrics.jsonl"), got = losses(many + "/metrics.jsonl");
  ASSERT_EQ(want.size(), 8u);
  ASSERT_EQ(got.size(), want.size());
  double worst = 0;
  for (const auto& [key, loss] : want) {
    ASSERT_TRUE(got.count(key)) << key.first << " step " << key.second;
    EXPECT_NEAR(got.at(key), loss, 1e-5 * std::abs(loss)) << key.first << " step " << key.second;
    worst = std::max(worst, std::abs(got.at(key) - loss) / std::abs(loss));
  }
  std::cout << "largest relative loss difference from one rank: " << worst << "\n";
}

}  // namespace
}  // namespace localist
