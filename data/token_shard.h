// SPDX-License-Identifier: Apache-2.0
// token_shard.h: HDF5 token shards (DESIGN.md §3; schema in docs/formats.md): one file
// per prepared source with /tokens (uint16 when the vocabulary fits, else uint32),
// /documents (n+1 uint64 offsets into /tokens; each document starts with the
// document-boundary token) and attributes describing tokenizer and source.
// Files are written under a temporary name and renamed: a shard exists whole or not.
#pragma once
#include <H5Cpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace localist {

constexpr int64_t kShardFormatVersion = 1;

struct ShardMeta {
  int64_t format_version = kShardFormatVersion;
  std::string source_name;
  std::string source_path;
  std::string source_sha256;
  int64_t source_bytes = 0;
  std::string domain;
  std::string tokenizer_kind;
  std::string tokenizer_spec;
  std::string tokenizer_hash;
  int64_t vocab_size = 0;
  int64_t token_count = 0;
  int64_t document_count = 0;
};

// Writes a shard atomically; throws localist::Error naming the path on failure.
void shard_write(const std::string& path, const std::vector<uint32_t>& tokens,
                 const std::vector<uint64_t>& document_offsets, const ShardMeta& meta);

// Reads only the attributes; throws localist::Error if the file is not a valid shard.
ShardMeta shard_read_meta(const std::string& path);

class ShardReader {
 public:
  explicit ShardReader(const std::string& path);
  const ShardMeta& meta() const { return meta_; }
  const std::string& path() const { return path_; }
  // Copies tokens [start, start + count) into `out` (widened to uint32); an id outside
  // the vocabulary is an Error (a damaged file).
  void read(uint64_t start, uint64_t count, uint32_t* out) const;
  std::vector<uint32_t> read_all() const;
  // document_count + 1 offsets, 0 to token_count, non-decreasing (else an Error).
  std::vector<uint64_t> document_offsets() const;
  // Loads all tokens into memory; later read() calls copy from there (~100x faster
  // than one HDF5 hyperslab read per window, bench/bench_data).
  void cache_in_memory();
  bool cached() const { return !cache_.empty(); }

 private:
  // Throws naming the file when an id is outside the vocabulary.
  void check_ids(uint64_t start, uint64_t count, const uint32_t* ids) const;
  std::string path_;
  ShardMeta meta_;
  H5::H5File file_;
  H5::DataSet tokens_;
  std::vector<uint32_t> cache_;
};

// Turns HDF5's error stack printing off (we report errors ourselves). Idempotent.
void hdf5_quiet();

}  // namespace localist
