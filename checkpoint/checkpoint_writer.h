// SPDX-License-Identifier: Apache-2.0
// checkpoint_writer.h: writing HDF5 checkpoints (DESIGN.md §3), collectively by all
// ranks: <run>/checkpoints/step-<N>/ holds rank-<r>.h5 per writing rank (for each LLM of
// the pool: its group's rank 0 the shared parameters; each block's owner in the first
// replica that block) with Adam moments beside, config.yaml and tokenizer.model copies,
// and index.h5 written last by world rank 0 (step, config, state, every LLM's block map,
// recruitment state and log, the pool, RNG states, a SHA-256 of every other file).
// The index's rename is the commit point; `latest` is updated after it. Asynchronous
// mode: the caller blocks only to copy tensors to host memory; the rank files are written
// on a background thread and committed at a later collective call (finish).
#pragma once
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "comm/communicator.h"
#include "model/localist_model.h"
#include "parallel/block_map.h"

namespace torch::optim {
class AdamW;
}

namespace localist {

struct FullMoments;

// One LLM that this rank trains, as the checkpoint takes it.
struct LlmWrite {
  std::string name = "main";
  LocalistModel* model = nullptr;
  torch::optim::AdamW* optimizer = nullptr;  // null: no optimizer state (e.g. tests)
  // A parameter's whole AdamW state when it is spread over ranks (ZeRO, split FFN),
  // gathered beforehand (ModelGroup::distributed_state); null: `optimizer` holds it.
  std::function<const FullMoments*(const at::Tensor&)> distributed_state;
  BlockMap map;  // owners within a replica (bp = map.bp)
  int dp_rank = 0, bp_rank = 0;
  bool lead = false;            // its group's rank 0: shared tensors and its index entry
  std::string recruitment_log;  // JSON lines, one per recruitment decision
  nlohmann::json recruitment;   // the recruiter's state (null without recruitment)
  nlohmann::json info;          // its pool_json entry (name, parent, ...; "order": pool index)
};

struct CheckpointWrite {
  std::string run_dir;
  std::shared_ptr<Communicator> world;  // every rank of it takes part
  std::vector<LlmWrite> llms;           // this rank's LLMs (every LLM of the pool has a lead somewhere)
  CheckpointMeta meta;
  std::string config_yaml;
  std::string tokenizer_file;      // the tokenizer's file in the checkpoint ("": none; tokenizer_stored_file)
  std::string tokenizer_contents;  // and its bytes
  nlohmann::json state;            // schedules, data position, mesh, pool map: stored in the index
  int64_t keep_last = 3;           // complete checkpoints kept (newest first)
  int64_t keep_every = 0;          // and every checkpoint whose step is a multiple of this, forever
  // Called at each point of the write (directory, rank-file, before-index, after-index);
  // the fault tests kill the process there. All but "directory" are inside finish().
  std::function<void(const std::string&)> on_point;
};

// This rank's tensors of one LLM under their checkpoint names (host copies with `copy`).
void checkpoint_llm_tensors(const LlmWrite& w, bool copy, std::vector<std::pair<std::string, at::Tensor>>& out);

// One checkpoint at a time, started and finished by collective calls on every rank.
class CheckpointWriter {
 public:
  explicit CheckpointWriter(bool asynchronous) : async_(asynchronous) {}
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;
  // Waits for a write in flight (never leaves a thread behind) but commits nothing:
  // an unfinished checkpoint stays uncommitted and is cleaned up at the next start.
  ~CheckpointWriter();

  // Collective: begins the checkpoint of w.meta.step (finishing a pending one first).
  // Returns once this rank's tensors are copied (asynchronous) or written (synchronous).
  void start(const CheckpointWrite& w);
  bool pending() const { return pending_; }
  int64_t pending_step() const { return pending_ ? w_.meta.step : -1; }
  // Whether this rank's file of the pending checkpoint is on disk (true when none is pending).
  bool local_done() const;
  // Collective: waits for this rank's file, gathers checksums, rank 0 writes the index and
  // prunes old checkpoints. Returns the committed directory on every rank.
  std::string finish();

  // Time the last start() held the caller (host copy, or the whole write when synchronous).
  double last_start_ms() const { return start_ms_; }
  // Of that, the time spent copying this rank's tensors to host memory (asynchronous only).
  double last_copy_ms() const { return copy_ms_; }
  // Time from the last start() until this rank's file was on disk.
  double last_write_ms() const { return write_ms_; }

 private:
  void join();
  bool async_;
  bool pending_ = false;
  CheckpointWrite w_;
  std::string dir_, file_name_;
  std::vector<std::pair<std::string, at::Tensor>> out_;  // this rank's tensors (host copies when asynchronous)
  std::string names_;  // their names, one per line (the index lists them, so a reader opens only the files it needs)
  at::Tensor rng_states_;  // rank 0: every rank's CPU generator state
  std::thread thread_;
  std::exception_ptr error_;
  std::atomic<bool> done_{true};
  std::string sha256_;
  int64_t bytes_ = 0;
  double start_ms_ = 0, copy_ms_ = 0, write_ms_ = 0;
};

// A synchronous checkpoint of w.meta.step; returns its directory (on every rank).
std::string checkpoint_save(const CheckpointWrite& w);

}  // namespace localist
