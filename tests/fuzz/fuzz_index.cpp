// SPDX-License-Identifier: Apache-2.0
// fuzz_index.cpp: a checkpoint index whose content is arbitrary but whose own digest
// is right, so the parse past the checksum is reached: the input is split at 0xFF bytes
// into the index's attributes (numbers, tokenizer, config, the state, files and pool
// JSON) and main's block map; the index is written as the writer would and read back.
#include <ATen/ATen.h>

#include <filesystem>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpoint_schema.h"
#include "checkpoint/tensor_file.h"
#include "core/error.h"
#include "tests/fuzz/fuzz_target.h"

LOCALIST_FUZZ_TARGET(index) {
  std::vector<std::string> f = localist::fuzz::split_fields(data, size, 16);
  localist::TensorFileAttrs attrs = {{"format", localist::kCheckpointFormatName},
                                     {"format_version", f[0]},
                                     {"step", f[1]},
                                     {"tokens_seen", f[2]},
                                     {"vocab_size", f[3]},
                                     {"seed", f[4]},
                                     {"tokenizer_kind", f[5]},
                                     {"tokenizer_hash", f[6]},
                                     {"tokenizer_spec", f[7]},
                                     {"config_yaml", f[8]},
                                     {"state_json", f[9]},
                                     {"files_json", f[10]},
                                     {"pool_json", f[11]}};
  auto bytes = [](const std::string& s) {
    return at::tensor(std::vector<uint8_t>(s.begin(), s.end()), at::kByte).view({static_cast<int64_t>(s.size())});
  };
  std::vector<int64_t> owner;
  for (char c : f[13]) owner.push_back(static_cast<int64_t>(static_cast<uint8_t>(c)) - 1);  // byte b: rank b - 1
  std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"block_map/main/active", bytes(f[12])},
      {"block_map/main/owner", at::tensor(owner, at::kLong).view({static_cast<int64_t>(owner.size())})},
      {"block_map/main/epoch", at::tensor(std::vector<int64_t>{static_cast<int64_t>(f[14].size())}, at::kLong)},
      {"recruitment_log/main", bytes(f[15])}};
  attrs["index_sha256"] = localist::checkpoint_index_digest(attrs, tensors);
  const std::string dir = localist::fuzz::scratch_dir() + "/step-00000001";
  std::filesystem::create_directories(dir);
  try {
    localist::tensor_file_write(dir + "/index.h5", tensors, attrs);
    localist::checkpoint_read(dir, false);
  } catch (const localist::Error&) {
  }
  return 0;
}
