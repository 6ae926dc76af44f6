// SPDX-License-Identifier: Apache-2.0
// train_run.h: a training run (DESIGN.md §1, §2): AdamW with decoupled weight decay,
// gradient clipping, LR and dial schedules, loss CE + mean over layers of
// λ_l (μ Ω_l − ν I_π,l), gradient accumulation, rules reloaded when their file changes,
// block recruitment, periodic held-out evaluation, metrics as JSON lines, checkpoints
// (exact resume, preemption by SIGTERM/SIGUSR1). train_run builds the run's model group
// (trainer/model_group.h: one LLM on a DP x BP mesh of the world's ranks) and drives it
// with the train loop (run/train_loop.h); losses do not depend on the number of
// ranks or on bp.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "data/data_config.h"
#include "model/metrics.h"
#include "model/model_config.h"
#include "pool/pool_config.h"
#include "recruitment/recruitment_config.h"
#include "run/fault_injection.h"
#include "trainer/train_config.h"

namespace localist {

struct TrainPlan {
  std::string run_dir;
  std::string config_yaml;  // effective config, stored in checkpoints
  uint64_t seed = 0;
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  std::shared_ptr<Communicator> world;  // all ranks of the run; null: one process
  int local_rank = 0;                   // this rank's index on its node: its GPU under train.device cuda
  int local_ranks = 1;                  // ranks on this node (train.threads 0 shares the cores)
  int64_t block_parallel = 1;           // ranks sharing one replica's blocks (divides the world)
  double timeout_s = 600.0;             // collective timeout in steady state
  double startup_timeout_s = 1800.0;    // ... until the first step is done
  int64_t zero = 0;                     // distributed.zero
  std::string vocab_parallel = "auto";  // distributed.vocab_parallel
  double bucket_mb = 1.0;               // gradient bucket size for the overlapped all-reduce
  std::string resume;                   // "", "auto" (newest complete checkpoint, if any) or a path
  // Called with the resumed checkpoint's effective config; throws when the run's config
  // may not continue it (launch/ decides which differences are allowed).
  std::function<void(const std::string& checkpoint_config_yaml)> check_resume;
  RecruitmentConfig recruitment;            // block recruitment rounds (block_parallel 1)
  PoolConfig pool = PoolConfig::single(0);  // the pool of LLMs (main alone without a pool: section)
};

struct TrainSummary {
  int64_t steps = 0;
  double final_loss = 0;
  double final_ce = 0;
  bool evaluated = false;
  EvalMetrics final_eval;
  std::string checkpoint;
  double seconds = 0;
  int stop_signal = 0;  // SIGTERM/SIGUSR1 that stopped training early (checkpoint written), else 0
  // The resumed checkpoint was already at train.steps: nothing was trained. The final
  // numbers are then the run's last logged ones (metrics.jsonl), when it has them.
  bool already_complete = false;
  int64_t last_logged_step = -1;  // -1: no step record found
  // A pool: each LLM's last logged bits per token (and held-out bits per byte, -1 if none), pool order.
  struct LlmFinal {
    std::string name;
    double bits_per_token = 0, eval_bits_per_byte = -1;
  };
  std::vector<LlmFinal> llms;
};

TrainSummary train_run(const TrainPlan& plan);

}  // namespace localist
