// SPDX-License-Identifier: Apache-2.0
// checkpoint.h: reading HDF5 checkpoints (DESIGN.md §3; written by checkpoint_writer.h):
// finding the newest complete one, verifying every file's SHA-256 before anything is
// used, and loading weights and Adam moments into a model on any mesh.
// A checkpoint holds a pool of LLMs (format 2; format 1, main alone, still reads).
// Limits: every rank reads the index's list of every rank file's tensors (checkpoints
// older than that list: opens each file for it) but reads only the tensors it loads (a
// block-parallel rank: its blocks, FFN part and vocabulary rows); hashing is shared out
// over the ranks only by checkpoint_read_auto.
#pragma once
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "checkpoint/tensor_file.h"
#include "comm/communicator.h"
#include "model/localist_model.h"
#include "parallel/block_map.h"
#include "parallel/block_slots.h"

namespace torch::optim {
class AdamW;
}

namespace localist {

class OptimizerState;

struct CheckpointMeta {
  int64_t step = 0;
  int64_t tokens_seen = 0;
  int64_t vocab_size = 0;
  uint64_t seed = 0;  // model construction seed (anchor code)
  std::string tokenizer_kind;
  std::string tokenizer_hash;
  std::string tokenizer_spec;
  // The localist that wrote it: "0.1.0 (commit 0123456789ab)"; empty for checkpoints
  // written before the index recorded it.
  std::string written_by;
};

// One LLM of the pool as the checkpoint holds it.
struct LlmCheckpoint {
  std::string name = "main";
  BlockMap map;
  std::string recruitment_log;  // JSON lines, one per recruitment decision
  nlohmann::json recruitment;   // the recruiter's state (null without recruitment)
  nlohmann::json info;  // its pool_json entry: name, parent, branch_step, domains, parameters, global_batch, ...
};

struct CheckpointContents {
  std::string dir;
  int64_t format_version = 0;
  CheckpointMeta meta;
  std::string config_yaml;
  nlohmann::json state;             // run-level: schedules, data position, mesh, pool map
  std::vector<LlmCheckpoint> llms;  // pool order, main first
  // The LLM named `name`; throws naming the checkpoint and the LLMs it holds.
  const LlmCheckpoint& llm(const std::string& name) const;
  at::Tensor rng_cpu;  // every writing-time rank's CPU generator state (world, bytes); undefined if absent
  // Tensors by global name: in memory (a state moved between ranks), or in the rank
  // files, where only their names are read up front and each tensor when it is asked
  // for, so a rank reads only what it loads (a block-parallel rank: its blocks).
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> located;  // name -> path of the rank file holding it
  bool has(const std::string& name) const { return tensors.count(name) || located.count(name); }
  at::Tensor get(const std::string& name) const;  // throws naming the checkpoint when absent
  // Rows [begin, begin + size) along `dim` of a tensor that must have `whole` of them
  // there; only those rows are read from the file.
  at::Tensor get_part(const std::string& name, int64_t dim, int64_t begin, int64_t size, int64_t whole) const;
  std::vector<std::string> names() const;  // every tensor's name, sorted
  mutable int64_t bytes_read = 0;          // of tensors read from the rank files so far
  // The rank files opened so far stay open for the next read (a resume reads hundreds
  // of datasets); close_files() once everything is loaded.
  void close_files() const { open_files.clear(); }
  mutable std::map<std::string, std::shared_ptr<TensorFileReader>> open_files;
  const TensorFileReader& reader_of(const std::string& path) const;
  nlohmann::json files;  // name -> {sha256, bytes}
};

// A step directory, a run directory or its checkpoints/ directory -> the checkpoint
// directory (`latest`, else the newest with an index). Throws naming the path.
std::string checkpoint_resolve(const std::string& path);
// The newest complete checkpoint under run_dir whose files all pass their checksums,
// read (null when there is none); each one skipped is logged with the failing file.
// With a world of several ranks (every rank calls it): each rank hashes its share of
// the files and all agree on the outcome, so a resume hashes every byte once, not once
// per rank, and no two ranks can pick different checkpoints.
std::unique_ptr<CheckpointContents> checkpoint_read_auto(const std::string& run_dir,
                                                         const std::shared_ptr<Communicator>& world = nullptr);
// Reads and verifies a checkpoint directory: every file's size, and the SHA-256 of the
// files whose index (in name order) is verify_rank modulo verify_ranks (all by default).
CheckpointContents checkpoint_read(const std::string& dir, bool with_tensors = true, int verify_rank = 0,
                                   int verify_ranks = 1);
// Removes step directories without an index and temporary files (crashed writes).
void checkpoint_clean_partial(const std::string& run_dir);

// The AdamW moments of a parameter (exp_avg, exp_avg_sq; empty before its first step).
MomentsOf adamw_moments(torch::optim::AdamW& optimizer);

// A model with LLM `llm`'s weights (config must match the checkpoint's shapes).
std::shared_ptr<LocalistModel> checkpoint_model(const CheckpointContents& c, const ModelConfig& config,
                                                const at::Device& device, const std::string& llm = "main");
// Copies LLM `llm`'s weights into `model`; throws naming the first tensor whose shape differs.
// A model holding a block-parallel rank's share (parallel/block_parallel.h) reads only
// that share: its blocks, its FFN part and vocabulary rows (those rows alone).
void checkpoint_load_model(const CheckpointContents& c, LocalistModel& model, const std::string& llm = "main");
// Restores the Adam moments and step counts: shared ones everywhere, each block's on
// the rank that holds it under `map` (at its row; a block-parallel rank's FFN part of the
// whole FFN moments), so a checkpoint resumes on any mesh. Must be called after
// checkpoint_load_model (and the block-parallel cut), before the first step. A moment of
// a parameter that one of `others` keeps (ZeRO's shards) goes to it instead of torch's.
void checkpoint_load_optimizer(const CheckpointContents& c, LocalistModel& model, torch::optim::AdamW& optimizer,
                               const BlockMap& map, int bp_rank, const std::string& llm = "main",
                               const std::vector<OptimizerState*>& others = {});

}  // namespace localist
