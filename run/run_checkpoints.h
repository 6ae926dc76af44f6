// SPDX-License-Identifier: Apache-2.0
// run_checkpoints.h: the checkpoints of a training run (DESIGN.md §3): what each one
// holds of the pool (every LLM's model, optimizer, block map, recruitment state and log,
// its pool entry; the pool map, schedules, data position, mesh), periodic ones written
// asynchronously and committed
// at the first step boundary where every rank's file is on disk, and which committed
// checkpoint is the newest (never rewritten).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "checkpoint/checkpoint_writer.h"
#include "comm/communicator.h"
#include "pool/pool.h"
#include "run/fault_injection.h"
#include "trainer/model_group.h"

namespace localist {

struct RunCheckpointSetup {
  std::string run_dir;
  std::shared_ptr<Communicator> world;
  std::string config_yaml;  // the effective config, stored in every checkpoint
  FaultInjection fault;
};

// What a checkpoint takes of LLM `llm` of the pool from this rank's group `g`.
LlmWrite llm_write_of(ModelGroup& g, const Pool& pool, size_t llm);

class RunCheckpoints {
 public:
  RunCheckpoints(RunCheckpointSetup setup, const TrainConfig& train);
  // The checkpoint a run resumed from counts as written.
  void set_resumed(int64_t step, const std::string& dir);
  // Collective: begins the checkpoint of the pool's state before `step`. Periodic ones
  // may be asynchronous (committed by a later commit_pending); others commit at once.
  void save(const Pool& pool, int64_t step, bool periodic);
  bool local_done() const { return writer_.local_done(); }
  // Collective: commits the pending checkpoint, if any.
  void commit_pending();
  int64_t last_step() const { return last_step_; }
  const std::string& last_dir() const { return last_dir_; }

 private:
  RunCheckpointSetup s_;
  TrainConfig train_;
  CheckpointWriter writer_;
  int64_t last_step_ = -1;
  std::string last_dir_;
};

}  // namespace localist
