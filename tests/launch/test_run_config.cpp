// SPDX-License-Identifier: Apache-2.0
// test_run_config.cpp: the run config is strict: each bad input named in the
// platform issue (typo'd key, negative batch, dial of 1.5, a mesh that does not
// divide the world, wrong types) is a ConfigError naming file:line:column and the
// key path; the bundled configs parse; the effective config parses back identically.
#include <gtest/gtest.h>

#include "core/error.h"
#include "launch/run_config.h"
#include "tests/test_util.h"

using namespace localist;

namespace {

const char* kBase = R"(run:
  dir: runs/t
data:
  sources:
    - name: a
      path: a.txt
train:
  global_batch: 8
  micro_batch: 4
  dial: 0.5
)";

std::string error_of(const std::string& yaml, int world = 0) {
  try {
    run_config_parse(yaml, "t.yaml", world);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string error_of_overrides(const std::vector<std::string>& o) {
  try {
    run_config_parse(kBase, "t.yaml", 0, o);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return s.replace(p, from.size(), to);
}

}  // namespace

TEST(RunConfig, BaseParsesWithDefaults) {
  const RunConfig c = run_config_parse(kBase, "t.yaml", 2);
  EXPECT_EQ(c.run.dir, "runs/t");
  EXPECT_EQ(c.data.sources.at(0).domain, "a");
  EXPECT_EQ(c.data.tokenizer.kind, "byte");
  EXPECT_EQ(c.train.dial.value, std::vector<double>{0.5});
  EXPECT_EQ(c.model.k_max, 8);
}

TEST(RunConfig, IssueBadInputsAreLocated) {
  EXPECT_EQ(error_of(replace(kBase, "train:", "trian:")), "t.yaml:7:1: trian: unknown key (did you mean 'train'?)");
  EXPECT_EQ(error_of(replace(kBase, "global_batch: 8", "global_batch: -4")),
            "t.yaml:8:17: train.global_batch: value -4 is out of range [1, 2147483647]");
  EXPECT_EQ(error_of(replace(kBase, "dial: 0.5", "dial: 1.5")),
            "t.yaml:10:9: train.dial: dial value 1.5 is outside [0, 1]");
  EXPECT_EQ(error_of(std::string(kBase) + "distributed:\n  block_parallel: 2\n", 3),
            "t.yaml:12:19: distributed.block_parallel: mesh does not divide the world: block_parallel 2 does not "
            "divide 3 ranks");
  EXPECT_EQ(error_of(replace(kBase, "micro_batch: 4", "micro_batch: four")),
            "t.yaml:9:16: train.micro_batch: expected an integer, got 'four'");
  EXPECT_EQ(error_of(kBase, 16),
            "t.yaml:8:17: train.global_batch: 8 sequences leave some of the 16 data-parallel "
            "ranks without one (use at most 8 ranks, or a larger batch)");
  EXPECT_EQ(error_of(kBase, 3), "");  // uneven slices (3, 3, 2) are fine
  EXPECT_EQ(error_of(kBase, 4), "");  // a micro-batch larger than a rank's rows is cut short
}

TEST(RunConfig, ModelAndDataChecks) {
  EXPECT_EQ(error_of(std::string(kBase) + "model:\n  k_max: 64\n  anchor_dim: 5\n"),
            "t.yaml:13:15: model.anchor_dim: naming one of k_max = 64 blocks takes 6 bits, so anchor_dim must be at "
            "least 6");
  EXPECT_NE(
      error_of(std::string(kBase) + "model:\n  k_initial: 9\n").find("model.k_initial: k_initial 9 exceeds k_max 8"),
      std::string::npos);
  EXPECT_NE(error_of(replace(kBase, "path: a.txt", "path: a.txt\n      start_step: 5")).find("start_step 0"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kBase, "name: a", "name: a b")).find("data.sources[0].name: use letters"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kBase, "path: a.txt", "path: a.txt\n      wieght: 2")).find("did you mean 'weight'"),
            std::string::npos);
  EXPECT_NE(error_of("run:\n  dir: x\n").find("data.sources is required"), std::string::npos);
  EXPECT_NE(error_of(replace(kBase, "dial: 0.5", "dial: [0.1, 0.2, 0.3]")).find("model.n_layers is 2"),
            std::string::npos);
}

TEST(RunConfig, DialScheduleForms) {
  const RunConfig lin = run_config_parse(
      replace(kBase, "dial: 0.5", "dial: {schedule: linear, from: 0.2, to: 0.8, start: 10, end: 20}"), "t.yaml", 0);
  EXPECT_EQ(lin.train.dial.kind, "linear");
  EXPECT_EQ(error_of(replace(kBase, "dial: 0.5", "dial: {schedule: linear, to: 1.2, end: 5}")),
            "t.yaml:10:32: train.dial.to: value 1.2 is out of range [0, 1]");
  EXPECT_EQ(error_of(replace(kBase, "dial: 0.5", "dial: {schedule: points, points: [[0, 0.0], [10, 2.0]]}")),
            "t.yaml:10:52: train.dial.points[1]: dial value 2.0 is outside [0, 1]");
  EXPECT_NE(error_of(replace(kBase, "dial: 0.5", "dial: {schedule: warp}")).find("is not one of"), std::string::npos);
  EXPECT_NE(error_of(replace(kBase, "dial: 0.5",
                             "dial: {schedule: stages, stages: [{name: a, value: 0}, {name: b, value: 1}]}"))
                .find("every stage but the last needs `until`"),
            std::string::npos);
}

TEST(RunConfig, DialProfilesAndImportKeysAreCheckedAndRoundTrip) {
  for (const std::string profile : {"linear", "{power: 5}", "[0.0, 1.0]"}) {
    const RunConfig a =
        run_config_parse(replace(kBase, "dial: 0.5", "dial: 0.5\n  dial_profile: " + profile), "t.yaml", 0);
    const std::string yaml = run_config_to_yaml(a);
    const RunConfig b = run_config_parse(yaml, "effective.yaml", 0);
    EXPECT_EQ(run_config_to_yaml(b), yaml) << profile;
    EXPECT_EQ(b.train.dial.at(3, 2, 1), a.train.dial.at(3, 2, 1)) << profile;
    EXPECT_EQ(a.train.dial.at(3, 2, 1)[0], 0.0) << profile;  // the first layer is distributed
  }
  EXPECT_EQ(error_of(replace(kBase, "dial: 0.5", "dial: 0.5\n  dial_profile: quintic")),
            "t.yaml:11:17: train.dial_profile: unknown profile 'quintic' (expected uniform, linear, {power: p} or a "
            "list)");
  EXPECT_EQ(error_of(replace(kBase, "dial: 0.5", "dial: 0.5\n  dial_profile: {power: -1}")),
            "t.yaml:11:25: train.dial_profile.power: value -1 is out of range [0.001, 100]");
  EXPECT_NE(error_of(replace(kBase, "dial: 0.5", "dial: 0.5\n  dial_profile: [0, 0.5, 1]"))
                .find("the profile has 3 values but model.n_layers is 2"),
            std::string::npos);
  // The model keys an imported GPT-2 needs; written back only when not the default.
  const RunConfig m = run_config_parse(replace(kBase, "train:",
                                               "model:\n  activation: gelu_tanh\n  layer_norm_eps: 1.0e-6\n"
                                               "  init_from: {format: hf, path: gpt2}\ntrain:"),
                                       "t.yaml", 0);
  EXPECT_EQ(m.model.activation, "gelu_tanh");
  EXPECT_EQ(m.model.layer_norm_eps, 1e-6);
  EXPECT_EQ(m.model.init_from.path, "gpt2");
  EXPECT_EQ(run_config_to_yaml(run_config_parse(run_config_to_yaml(m), "e.yaml", 0)), run_config_to_yaml(m));
  EXPECT_EQ(run_config_to_yaml(run_config_parse(kBase, "t.yaml", 0)).find("activation: "), std::string::npos);
  EXPECT_NE(error_of(replace(kBase, "train:", "model:\n  activation: relu\ntrain:")).find("model.activation"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kBase, "train:", "model:\n  init_from: {format: onnx, path: x}\ntrain:"))
                .find("model.init_from.format"),
            std::string::npos);
  EXPECT_NE(
      error_of(replace(kBase, "train:", "model:\n  init_from: {format: hf}\ntrain:")).find("init_from needs the path"),
      std::string::npos);
}

TEST(RunConfig, EffectiveConfigRoundTrips) {
  for (const std::string dial :
       {"0.5", "[0.0, 1.0]", "{schedule: cosine, from: 0.0, to: 1.0, start: 0, end: 100}",
        "{schedule: points, points: [[0, 0.0], [50, 0.7]]}",
        "{schedule: stages, stages: [{name: warm, until: 10, value: 0}, {name: local, value: [0.5, 1]}]}",
        "{schedule: uniform, lo: 0.25, hi: 0.75}"}) {
    const RunConfig a = run_config_parse(replace(kBase, "dial: 0.5", "dial: " + dial), "t.yaml", 0);
    const std::string yaml = run_config_to_yaml(a);
    const RunConfig b = run_config_parse(yaml, "effective.yaml", 0);
    EXPECT_EQ(run_config_to_yaml(b), yaml) << dial;
    EXPECT_EQ(b.train.dial.at(7, 2, 1), a.train.dial.at(7, 2, 1)) << dial;
  }
}

TEST(RunConfig, BundledConfigsParse) {
  for (const char* name : {"quickstart.yaml", "reference.yaml"}) {
    const std::string path = test::source_dir() + "/configs/" + name;
    EXPECT_NO_THROW(run_config_load(path, 1)) << name;
    EXPECT_NO_THROW(run_config_load(path, 2)) << name;
  }
  EXPECT_THROW(run_config_load("/nonexistent.yaml", 1), ConfigError);
}

TEST(RunConfig, CommandLineOverridesAreCheckedLikeTheFile) {
  const RunConfig c = run_config_parse(
      kBase, "t.yaml", 0,
      {"train.dial={schedule: uniform, lo: 0.1, hi: 0.9}", "run.dir=runs/x", "model.k_max=16", "model.anchor_dim=4"});
  EXPECT_EQ(c.train.dial.kind, "uniform");
  EXPECT_DOUBLE_EQ(c.train.dial.hi, 0.9);
  EXPECT_EQ(c.run.dir, "runs/x");
  EXPECT_EQ(c.model.k_max, 16);
  EXPECT_NE(error_of_overrides({"train.dial=1.5"}).find("train.dial: dial value 1.5 is outside [0, 1]"),
            std::string::npos);
  EXPECT_NE(error_of_overrides({"train.stpes=3"}).find("did you mean 'steps'"), std::string::npos);
  EXPECT_NE(error_of_overrides({"nokey"}).find("expected key.path=value"), std::string::npos);
  EXPECT_NE(error_of_overrides({"train.dial="}).find("no value"), std::string::npos);
  EXPECT_NE(error_of_overrides({"run.dir.x=1"}).find("'dir' is not a mapping"), std::string::npos);
}

TEST(RunConfig, RecruitmentSectionIsCheckedAndRoundTrips) {
  const RunConfig c = run_config_parse(
      kBase, "t.yaml", 0,
      {"recruitment.interval=50", "recruitment.phi=0.3", "recruitment.anchor=centroid", "recruitment.delta=128"});
  EXPECT_FALSE(c.recruitment.enabled);
  EXPECT_EQ(c.recruitment.interval, 50);
  EXPECT_DOUBLE_EQ(c.recruitment.phi, 0.3);
  EXPECT_EQ(c.recruitment.anchor, "centroid");
  const std::string yaml = run_config_to_yaml(c);
  EXPECT_EQ(run_config_to_yaml(run_config_parse(yaml, "effective.yaml", 0)), yaml);
  EXPECT_NE(error_of_overrides({"recruitment.phi=1.5"}).find("recruitment.phi"), std::string::npos);
  EXPECT_NE(error_of_overrides({"recruitment.anchor=random"}).find("is not one of"), std::string::npos);
  EXPECT_NE(error_of_overrides({"recruitment.n_tri=3"}).find("did you mean 'n_try'"), std::string::npos);
  EXPECT_NE(error_of_overrides({"recruitment.enabled=true", "model.k_initial=8", "model.k_max=8"})
                .find("recruitment needs free block slots"),
            std::string::npos);
}

// A misspelt key is usually why a required one is "missing": the typo is reported first.
TEST(RunConfig, AnUnknownKeyIsReportedBeforeTheRequiredKeyItHides) {
  EXPECT_NE(error_of(replace(kBase, "  sources:", "  souces:"))
                .find("t.yaml:4:3: data.souces: unknown key (did you "
                      "mean 'sources'?)"),
            std::string::npos)
      << error_of(replace(kBase, "  sources:", "  souces:"));
  const std::string root =
      error_of(replace(replace(kBase, "data:", "dta:"), "train:\n  global_batch: 8", "traim:\n  global_batch: 8"));
  EXPECT_NE(root.find("t.yaml:3:1: dta: unknown key (did you mean 'data'?)"), std::string::npos) << root;
  // Without a typo the missing key is still named.
  std::string no_sources = kBase;
  no_sources.replace(no_sources.find("  sources:"), no_sources.find("train:") - no_sources.find("  sources:"),
                     "  shard_dir: s\n");
  EXPECT_NE(error_of(no_sources).find("data.sources is required"), std::string::npos) << error_of(no_sources);
}
