// SPDX-License-Identifier: Apache-2.0
// data_config.h: the typed `data:` section of a run config (parsed and validated by
// launch/run_config.cpp; defaults documented in configs/reference.yaml).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace localist {

struct TokenizerConfig {
  std::string kind = "byte";  // byte | sentencepiece | bpe (GPT-2's byte-level BPE)
  // sentencepiece: load this .model (empty = train one from the sources); bpe: a
  // tokenizer.json, or a directory with tokenizer.json or vocab.json + merges.txt.
  std::string model;
  // sentencepiece only:
  int64_t vocab_size = 4000;           // when training
  std::string model_type = "unigram";  // unigram | bpe (when training)
};

struct SourceConfig {
  std::string name;            // unique; the shard is <shard_dir>/<name>.h5
  std::string path;            // UTF-8 text file
  std::string domain;          // domain tag (defaults to name)
  std::string split = "file";  // document boundaries: file | blank_line | wikitext
  double weight = 1.0;         // mixture weight among active sources (> 0)
  int64_t start_step = 0;      // first training step at which the source is sampled
  bool train = true;           // false: held out (evaluation only, never sampled for training)
};

struct DataConfig {
  std::string shard_dir = "shards";
  TokenizerConfig tokenizer;
  std::vector<SourceConfig> sources;
};

}  // namespace localist
