// SPDX-License-Identifier: Apache-2.0
// batch_reader.cpp: see batch_reader.h.
#include "data/batch_reader.h"

#include <sys/stat.h>

#include "core/error.h"
#include "data/prepare.h"

namespace localist {

BatchReader::BatchReader(const DataConfig& data, int64_t seq_len, uint64_t seed, int64_t global_batch,
                         uint64_t cache_bytes, std::vector<StreamPhase> phases) {
  std::vector<SamplerSource> sources;
  std::string hash;
  for (const auto& s : data.sources) {
    if (!s.train) continue;
    const std::string path = shard_path(data, s);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      throw Error(path + ": shard for source '" + s.name + "' not found; run `localist prepare` first");
    }
    auto reader = std::make_unique<ShardReader>(path);
    const ShardMeta& m = reader->meta();
    if (hash.empty()) hash = m.tokenizer_hash;
    if (m.tokenizer_hash != hash) {
      throw Error(path + ": made with another tokenizer than the other shards; re-run `localist prepare --force`");
    }
    struct stat src {};
    if (::stat(s.path.c_str(), &src) == 0 && static_cast<int64_t>(src.st_size) != m.source_bytes) {
      throw Error(path + ": stale shard (" + s.path + " changed since it was prepared); re-run `localist prepare`");
    }
    vocab_size_ = static_cast<uint32_t>(m.vocab_size);
    sources.push_back({s.name, static_cast<uint64_t>(m.token_count), s.weight, s.start_step});
    shards_.push_back(std::move(reader));
  }
  sampler_ = std::make_unique<GlobalSampler>(std::move(sources), seq_len, seed, global_batch, std::move(phases));
  uint64_t total = 0;
  for (const auto& s : shards_) total += static_cast<uint64_t>(s->meta().token_count) * sizeof(uint32_t);
  if (total <= cache_bytes) {
    for (auto& s : shards_) s->cache_in_memory();
  }
}

TokenBatch BatchReader::read(int64_t step, int dp_rank, int dp_size) const {
  return read_refs(sampler_->rank_samples(step, dp_rank, dp_size));
}

TokenBatch BatchReader::read_refs(const std::vector<SampleRef>& refs) const {
  TokenBatch b;
  b.rows = static_cast<int64_t>(refs.size());
  b.cols = sampler_->seq_len() + 1;
  b.tokens.resize(b.rows * b.cols);
  for (int64_t r = 0; r < b.rows; ++r) {
    shards_[refs[r].source]->read(refs[r].start, b.cols, b.tokens.data() + r * b.cols);
    b.source.push_back(refs[r].source);
    b.start.push_back(refs[r].start);
  }
  return b;
}

}  // namespace localist
