// SPDX-License-Identifier: Apache-2.0
// recruitment_fixture.h: the run the recruitment and report suites share: tiny
// Shakespeare cut into drama training text (first 90%) and held-out text (last 10%), and
// configs/recruitment.yaml edited as parsed YAML — its sources pointed at the bundled
// corpora and that split, shards under the test's directory — so that a change to the
// config's layout fails here by name instead of leaving a test on other data.
#pragma once
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <stdexcept>
#include <string>

#include "tests/test_util.h"

namespace localist::test {

// Writes drama-train.txt and drama-test.txt into `dir` and returns the config: the
// encyclopedia and drama training sources, drama held out, and with `heldout_wikitext`
// WikiText-2 test held out as well (after drama).
inline YAML::Node recruitment_fixture_config(const TempDir& dir, bool heldout_wikitext) {
  const std::string text = read_text(corpus("tinyshakespeare.txt"));
  const size_t cut = text.rfind("\n\n", text.size() * 9 / 10) + 2;
  write_text(dir / "drama-train.txt", text.substr(0, cut));
  write_text(dir / "drama-test.txt", text.substr(cut));
  YAML::Node cfg = YAML::LoadFile(source_dir() + "/configs/recruitment.yaml");
  YAML::Node sources(YAML::NodeType::Sequence);
  for (YAML::Node s : cfg["data"]["sources"]) {
    const std::string name = s["name"].as<std::string>();
    if (name == "wikitext-valid") {
      s["path"] = corpus("wikitext2-valid.txt");
      sources.push_back(s);
    } else if (name == "shakespeare") {
      s["path"] = "drama-train.txt";
      sources.push_back(s);
    } else if (name == "wikitext-test") {
      YAML::Node drama;
      drama["name"] = "shakespeare-test";
      drama["path"] = "drama-test.txt";
      drama["domain"] = "drama";
      drama["split"] = "blank_line";
      drama["train"] = false;
      sources.push_back(drama);
      if (heldout_wikitext) {
        s["path"] = corpus("wikitext2-test.txt");
        sources.push_back(s);
      }
    } else {
      throw std::runtime_error("configs/recruitment.yaml: source '" + name + "' is new to the test fixture");
    }
  }
  cfg["data"]["sources"] = sources;
  cfg["data"]["shard_dir"] = "shards";
  return cfg;
}

inline void write_yaml(const std::string& path, const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  write_text(path, std::string(out.c_str()) + "\n");
}

}  // namespace localist::test
