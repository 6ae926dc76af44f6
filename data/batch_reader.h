// SPDX-License-Identifier: Apache-2.0
// batch_reader.h: reads the token windows the GlobalSampler picks from the prepared
// shards of the training sources. Checks at open that every shard exists, uses one
// tokenizer and still matches its source file's size (stale shards are an error).
// Shards are held in memory while their total fits `cache_bytes` (as uint32), else
// read window by window from HDF5.
#pragma once
#include <memory>
#include <vector>

#include "data/data_config.h"
#include "data/sampler.h"
#include "data/token_shard.h"

namespace localist {

struct TokenBatch {
  int64_t rows = 0;
  int64_t cols = 0;              // seq_len + 1: inputs are [:, :-1], targets [:, 1:]
  std::vector<uint32_t> tokens;  // row-major rows x cols
  std::vector<int32_t> source;   // per row: index into the training sources
  std::vector<int64_t> start;    // per row: the window's first token in its source
};

class BatchReader {
 public:
  static constexpr uint64_t kDefaultCacheBytes = uint64_t(1) << 30;
  // `phases`: an LLM's share of the sources (GlobalSampler); empty: every source.
  BatchReader(const DataConfig& data, int64_t seq_len, uint64_t seed, int64_t global_batch,
              uint64_t cache_bytes = kDefaultCacheBytes, std::vector<StreamPhase> phases = {});
  // This data-parallel rank's rows of the global batch of `step`.
  TokenBatch read(int64_t step, int dp_rank, int dp_size) const;
  // The windows `refs` (e.g. a recruitment probe's), in that order.
  TokenBatch read_refs(const std::vector<SampleRef>& refs) const;
  const GlobalSampler& sampler() const { return *sampler_; }
  const std::vector<std::unique_ptr<ShardReader>>& shards() const { return shards_; }
  uint32_t vocab_size() const { return vocab_size_; }

 private:
  std::vector<std::unique_ptr<ShardReader>> shards_;  // training sources, config order
  std::unique_ptr<GlobalSampler> sampler_;
  uint32_t vocab_size_ = 0;
};

}  // namespace localist
