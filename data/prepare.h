// SPDX-License-Identifier: Apache-2.0
// prepare.h: `localist prepare`: turns every configured text source into an HDF5 token
// shard. All sources are validated before anything is written; shards whose source
// checksum and tokenizer hash already match are left alone (so repeated runs are
// cheap and stable). Appends one JSON line per source to <shard_dir>/prepare.jsonl.
#pragma once
#include <string>
#include <vector>

#include "data/data_config.h"
#include "data/token_shard.h"

namespace localist {

class ProgressLine;

struct ShardSummary {
  std::string path;
  ShardMeta meta;
  bool written = false;  // false: an up-to-date shard was kept
  double seconds = 0;
};

std::string shard_path(const DataConfig& data, const SourceConfig& source);

// Path of the SentencePiece model trained for this config (empty for other kinds).
std::string trained_tokenizer_path(const DataConfig& data);

std::vector<ShardSummary> prepare_shards(const DataConfig& data, bool force, ProgressLine* progress);

// A human-readable table of the shards: domain, documents, tokens, bytes/token, checksum.
std::string corpus_summary(const std::vector<ShardSummary>& shards);

}  // namespace localist
