// checkpoint.h: HDF5 checkpoints (DESIGN.md §3), written collectively by all ranks:
// <run>/checkpoints/step-<N>/ holds rank-<r>.h5 per writing rank (world rank 0: the
// shared parameters; the owner of each block in the first replica: that block), each
// with its optimizer moments beside, named by global identity independent of
// placement; config.yaml and tokenizer.model copies; and index.h5, written last by
// rank 0 with the step, config, state, block map and a SHA-256 of every other file.
// The index's rename is the commit point; `latest` is updated after it.
// Limits: one LLM ("main") until specialists land; readers load every file.
#pragma once
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "model/localist_model.h"
#include "recruitment/block_map.h"
#include "trainer/block_parallel.h"

namespace torch::optim {
class AdamW;
}

namespace localist {

constexpr int64_t kCheckpointFormatVersion = 1;

struct CheckpointMeta {
  int64_t step = 0;
  int64_t tokens_seen = 0;
  int64_t vocab_size = 0;
  uint64_t seed = 0;  // model construction seed (anchor code)
  std::string tokenizer_kind;
  std::string tokenizer_hash;
  std::string tokenizer_spec;
};

struct CheckpointWrite {
  std::string run_dir;
  std::shared_ptr<Communicator> world;  // every rank of it calls checkpoint_save
  LocalistModel* model = nullptr;
  torch::optim::AdamW* optimizer = nullptr;  // null: no optimizer state (e.g. tests)
  BlockMap map;                              // owners within a replica (bp = map.bp)
  int dp_rank = 0, bp_rank = 0;
  CheckpointMeta meta;
  std::string config_yaml;
  std::string tokenizer_model_path;  // copied in when not empty (SentencePiece)
  nlohmann::json state;              // schedules, data position, mesh: stored in the index
  int64_t keep_last = 3;             // complete checkpoints kept (newest first)
  int64_t keep_every = 0;            // and every checkpoint whose step is a multiple of this, forever
  // Called at each point of the write (directory, rank-file, before-index, after-index);
  // the fault tests kill the process there.
  std::function<void(const std::string&)> on_point;
};

// Writes the checkpoint of w.meta.step; returns its directory (on every rank).
std::string checkpoint_save(const CheckpointWrite& w);

struct CheckpointContents {
  std::string dir;
  int64_t format_version = 0;
  CheckpointMeta meta;
  std::string config_yaml;
  nlohmann::json state;
  BlockMap map;
  std::map<std::string, at::Tensor> tensors;  // every tensor of every rank file, by global name
  nlohmann::json files;                       // name -> {sha256, bytes}
};

// A step directory, a run directory or its checkpoints/ directory -> the checkpoint
// directory (`latest`, else the newest with an index). Throws naming the path.
std::string checkpoint_resolve(const std::string& path);
// The newest complete checkpoint under run_dir whose files all pass their checksums,
// read (null when there is none); each one skipped is logged with the failing file.
std::unique_ptr<CheckpointContents> checkpoint_read_auto(const std::string& run_dir);
// Reads and verifies (SHA-256 of every file) a checkpoint directory.
CheckpointContents checkpoint_read(const std::string& dir, bool with_tensors = true);
// Removes step directories without an index and temporary files (crashed writes).
void checkpoint_clean_partial(const std::string& run_dir);

// The AdamW moments of a parameter (exp_avg, exp_avg_sq; empty before its first step).
MomentsOf adamw_moments(torch::optim::AdamW& optimizer);

// A model with the checkpoint's weights (config must match the checkpoint's shapes).
std::shared_ptr<LocalistModel> checkpoint_model(const CheckpointContents& c, const ModelConfig& config,
                                                const at::Device& device);
// Copies the weights into `model`; throws naming the first tensor whose shape differs.
void checkpoint_load_model(const CheckpointContents& c, LocalistModel& model);
// Restores the Adam moments and step counts: shared ones everywhere, each block's on
// the rank that owns it under `map` (the others' stay zero), so a checkpoint resumes on
// any mesh. Must be called after checkpoint_load_model, before the first step.
void checkpoint_load_optimizer(const CheckpointContents& c, LocalistModel& model, torch::optim::AdamW& optimizer,
                               const BlockMap& map, int bp_rank);

}  // namespace localist
