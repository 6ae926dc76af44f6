// SPDX-License-Identifier: Apache-2.0
// fuzz_shard.cpp: the token shard reader on shards whose content is arbitrary: the
// input, split at 0xFF bytes, gives the attributes (names, domain, tokenizer, vocabulary
// size), the token ids (4 bytes each) and the document offsets (8 bytes each); the shard
// is written by shard_write (valid HDF5) and read the ways training, `inspect` and the
// report read it. Arbitrary bytes as HDF5 are libhdf5's parser, not ours (docs/results.md).
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/token_shard.h"
#include "tests/fuzz/fuzz_target.h"

LOCALIST_FUZZ_TARGET(shard) {
  std::vector<std::string> f = localist::fuzz::split_fields(data, size, 8);
  localist::ShardMeta meta;
  meta.source_name = f[0];
  meta.source_path = f[1];
  meta.domain = f[2];
  meta.tokenizer_kind = f[3];
  meta.tokenizer_spec = f[4];
  int64_t vocab = 0;
  for (char c : f[5].substr(0, 4)) vocab = vocab * 256 + static_cast<uint8_t>(c);
  meta.vocab_size = vocab;
  std::vector<uint32_t> tokens(f[6].size() / 4);
  if (!tokens.empty()) std::memcpy(tokens.data(), f[6].data(), tokens.size() * 4);
  std::vector<uint64_t> offsets(f[7].size() / 8);
  if (!offsets.empty()) std::memcpy(offsets.data(), f[7].data(), offsets.size() * 8);
  const std::string path = localist::fuzz::scratch_dir() + "/s.h5";
  try {
    localist::shard_write(path, tokens, offsets, meta);
    localist::ShardReader shard(path);
    shard.document_offsets();
    const auto all = shard.read_all();
    if (!all.empty()) {
      std::vector<uint32_t> last(1);
      shard.read(all.size() - 1, 1, last.data());
      shard.cache_in_memory();
      shard.read(0, 1, last.data());
    }
  } catch (const localist::Error&) {
  }
  return 0;
}
