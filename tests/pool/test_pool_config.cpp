// SPDX-License-Identifier: Apache-2.0
// test_pool_config.cpp: the `pool:` section (launch/pool_section.h): a valid pool parses
// (main first, parents before children, batches inherited) and survives the effective
// config; each bad pool named in the pool issue (unknown domain, a domain owned twice,
// an unknown or cyclic parent, a branch step past the end, main left with nothing) is a
// ConfigError naming file:line:column and the key; the pool's queries (who exists, who
// owns a domain at a step) follow the branch steps.
#include <gtest/gtest.h>

#include "core/error.h"
#include "launch/run_config.h"

using namespace localist;

namespace {

const std::string kData = R"(run:
  dir: runs/t
data:
  sources:
    - {name: wiki, path: w.txt}
    - {name: drama, path: d.txt}
    - {name: code, path: c.txt, start_step: 5}
train:
  steps: 100
  global_batch: 8
  micro_batch: 4
)";

std::string error_of(const std::string& pool) {
  try {
    run_config_parse(kData + pool, "p.yaml", 0);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

const char* kPool = R"(pool:
  generalist_replay: 0.2
  llms:
    - {name: code, domains: [code], branch_from: drama, branch_step: 40}
    - name: drama
      domains: [drama]
      branch_from: main
      branch_step: 20
      global_batch: 4
)";

}  // namespace

TEST(PoolConfig, ValidPoolOrderedAndInherited) {
  const RunConfig c = run_config_parse(kData + kPool, "p.yaml", 0);
  ASSERT_TRUE(c.pool.declared);
  ASSERT_EQ(c.pool.llms.size(), 3u);
  EXPECT_EQ(c.pool.llms[0].name, "main");
  EXPECT_EQ(c.pool.llms[0].global_batch, 8);
  EXPECT_EQ(c.pool.llms[1].name, "drama");  // the parent first, though declared second
  EXPECT_EQ(c.pool.llms[2].name, "code");
  EXPECT_EQ(c.pool.llms[2].global_batch, 4);  // the parent's batch
  EXPECT_DOUBLE_EQ(c.pool.generalist_replay, 0.2);
  EXPECT_EQ(c.pool.existing_at(19), (std::vector<int>{0}));
  EXPECT_EQ(c.pool.existing_at(20), (std::vector<int>{0, 1}));
  EXPECT_EQ(c.pool.existing_at(99), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(c.pool.owner_at("code", 39), 0);  // main trains a domain until its owner exists
  EXPECT_EQ(c.pool.owner_at("code", 40), 2);
  EXPECT_EQ(c.pool.owner_at("wiki", 99), 0);
  EXPECT_EQ(c.pool.branch_steps(), (std::vector<int64_t>{20, 40}));
  // The effective config gives back the same pool.
  const RunConfig back = run_config_parse(run_config_to_yaml(c), "effective.yaml", 0);
  ASSERT_EQ(back.pool.llms.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back.pool.llms[i].name, c.pool.llms[i].name);
    EXPECT_EQ(back.pool.llms[i].domains, c.pool.llms[i].domains);
    EXPECT_EQ(back.pool.llms[i].branch_step, c.pool.llms[i].branch_step);
    EXPECT_EQ(back.pool.llms[i].global_batch, c.pool.llms[i].global_batch);
  }
  EXPECT_EQ(run_config_to_yaml(back), run_config_to_yaml(c));
  // Without a pool section: main alone, and nothing about a pool in the effective config.
  const RunConfig plain = run_config_parse(kData, "p.yaml", 0);
  EXPECT_FALSE(plain.pool.declared);
  EXPECT_EQ(plain.pool.llms.size(), 1u);
  EXPECT_EQ(run_config_to_yaml(plain).find("pool"), std::string::npos);
  // Adding a pool is not a config conflict on resume (the run checks it against the
  // checkpoint's LLMs: tests/e2e/test_pool.cpp).
  EXPECT_TRUE(run_config_resume_conflicts(run_config_to_yaml(plain), run_config_to_yaml(c)).fixed.empty());
}

TEST(PoolConfig, BadPoolsAreLocatedOneLineErrors) {
  auto pool = [](const std::string& llms) { return "pool:\n  llms:\n" + llms; };
  EXPECT_EQ(error_of(pool("    - {name: x, domains: [poetry], branch_from: main, branch_step: 3}\n")),
            "p.yaml:14:26: pool.llms[0].domains: unknown domain 'poetry' (the training sources' domains: code, "
            "drama, wiki)");
  EXPECT_EQ(error_of(pool("    - {name: x, domains: [drama], branch_from: main, branch_step: 3}\n"
                          "    - {name: y, domains: [drama], branch_from: main, branch_step: 3}\n")),
            "p.yaml:15:26: pool.llms[1].domains: domain 'drama' is owned twice (by x and y)");
  EXPECT_NE(error_of(pool("    - {name: x, domains: [drama], branch_from: mian, branch_step: 3}\n"))
                .find("pool.llms[0].branch_from: unknown LLM 'mian'"),
            std::string::npos);
  EXPECT_NE(error_of(pool("    - {name: x, domains: [drama], branch_from: y, branch_step: 3}\n"
                          "    - {name: y, domains: [code], branch_from: x, branch_step: 6}\n"))
                .find("is its own ancestor (a cycle of branch_from)"),
            std::string::npos);
  EXPECT_EQ(error_of(pool("    - {name: x, domains: [drama], branch_from: main, branch_step: 100}\n")),
            "p.yaml:14:67: pool.llms[0].branch_step: step 100 is past the end of the run (train.steps 100)");
  EXPECT_NE(error_of(pool("    - {name: x, domains: [code], branch_from: main, branch_step: 2}\n"))
                .find("no training source of its domains starts by step 2"),
            std::string::npos);
  EXPECT_NE(error_of(pool("    - {name: x, domains: [wiki, drama], branch_from: main, branch_step: 0}\n"))
                .find("from step 0 every training domain is owned by a specialist"),
            std::string::npos);
  EXPECT_NE(error_of(pool("    - {name: main, domains: [wiki]}\n")).find("main owns every domain no specialist owns"),
            std::string::npos);
  EXPECT_NE(error_of(pool("    - {name: x, domains: [drama], branch_step: 3}\n")).find("needs branch_from"),
            std::string::npos);
  EXPECT_NE(error_of(pool("    - {name: Drama!, domains: [drama], branch_from: main, branch_step: 3}\n"))
                .find("lower-case letters"),
            std::string::npos);
  EXPECT_NE(error_of(pool("    - {name: x, domains: [drama], branch_from: main, branch_step: 3, gobal_batch: 2}\n"))
                .find("gobal_batch: unknown key (did you mean 'global_batch'?)"),
            std::string::npos);
  EXPECT_NE(error_of("pool:\n  generalist_replay: 0.1\n").find("pool.llms is required"), std::string::npos);
}

// pool.recruit (M11 steps 1-5): its constants parse with their defaults and survive the
// effective config; without declared specialists the pool is main alone; a bad constant,
// a pool declared beyond max_llms or block parallelism is a located ConfigError.
TEST(PoolConfig, RecruitConstants) {
  const RunConfig c =
      run_config_parse(kData + "pool:\n  recruit: true\n  n_try: 7\n  horizon_tokens: 5.0e8\n", "p.yaml", 0);
  ASSERT_TRUE(c.pool.declared);
  EXPECT_EQ(c.pool.llms.size(), 1u);
  const PoolRecruitConfig& r = c.pool.recruit;
  EXPECT_TRUE(r.enabled);
  EXPECT_EQ(r.n_try, 7);
  EXPECT_DOUBLE_EQ(r.horizon_tokens, 5e8);
  EXPECT_EQ(r.specialist_batch, 8);  // train.global_batch
  EXPECT_EQ(r.interval, 100);
  EXPECT_DOUBLE_EQ(r.delta, 0.0);
  EXPECT_DOUBLE_EQ(r.confidence_z, 2.0);
  const RunConfig again = run_config_parse(run_config_to_yaml(c), "effective.yaml", 0);
  EXPECT_TRUE(again.pool.recruit.enabled);
  EXPECT_EQ(again.pool.recruit.n_try, 7);
  EXPECT_DOUBLE_EQ(again.pool.recruit.horizon_tokens, 5e8);
  EXPECT_NE(error_of("pool:\n  recruit: true\n  n_tri: 3\n").find("n_tri"), std::string::npos);
  EXPECT_NE(error_of("pool:\n  recruit: true\n  confidence_z: -1\n").find("p.yaml:"), std::string::npos);
  EXPECT_NE(error_of(std::string(kPool) + "  recruit: true\n  max_llms: 2\n").find("more than max_llms 2"),
            std::string::npos);
  EXPECT_NE(error_of("pool:\n  generalist_replay: 0.1\n").find("pool.llms is required"), std::string::npos);
}
