// trainer.h: single-process training of a localist model: AdamW with decoupled weight
// decay, gradient clipping, LR and dial schedules, loss CE + mean over layers of
// λ_l (μ Ω_l − ν I_π,l), gradient accumulation over micro-batches, rules reloaded
// when their file changes, periodic held-out evaluation, metrics as JSON lines, and
// a final checkpoint. Over several ranks the world is a mesh DP x BP: consecutive
// groups of `block_parallel` ranks hold one replica and split its blocks (round robin);
// each replica takes its slice of the global batch; gradients are summed over the
// data-parallel groups, so losses do not depend on the number of ranks or on bp.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "data/data_config.h"
#include "model/metrics.h"
#include "model/model_config.h"
#include "recruitment/recruitment_config.h"
#include "trainer/train_config.h"

namespace localist {

struct TrainPlan {
  std::string name;
  std::string run_dir;
  std::string config_yaml;  // effective config, stored in checkpoints
  uint64_t seed = 0;
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  std::shared_ptr<Communicator> world;  // all ranks of the run; null: one process
  int64_t block_parallel = 1;           // ranks sharing one replica's blocks (divides the world)
  double timeout_s = 600.0;             // collective timeout in steady state
  double startup_timeout_s = 1800.0;    // ... until the first step is done
  double bucket_mb = 1.0;               // gradient bucket size for the overlapped all-reduce
  std::string resume;                   // "", "auto" (newest complete checkpoint, if any) or a path
  // Called with the resumed checkpoint's effective config; throws when the run's config
  // may not continue it (launch/ decides which differences are allowed).
  std::function<void(const std::string& checkpoint_config_yaml)> check_resume;
  RecruitmentConfig recruitment;        // block recruitment rounds (block_parallel 1)
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
};

// Fault injection for the failure tests (docs/operations.md): LOCALIST_TEST_FAULT=
// "stall:rank=R:step=S" makes rank R stop before step S; "kill:rank=R:step=S" kills it.
// "ckptkill:rank=R:step=S:at=P" kills rank R inside the checkpoint of step S at point P
// (directory, rank-file, before-index, after-index); "signal:rank=R:step=S" sends
// SIGUSR1 to rank R itself before step S (a preemption notice).
struct FaultInjection {
  std::string kind;  // "", stall, kill, signal or ckptkill
  int rank = -1;
  int64_t step = -1;
  std::string at;    // ckptkill only
};
FaultInjection fault_injection_from_env();
void fault_maybe_trigger(const FaultInjection& fault, int rank, int64_t step);
// LOCALIST_TEST_REMAP_STEP=S (tests): under block parallelism, every block moves to the
// next BP rank at step S, parameters and optimizer moments included; -1 when unset.
int64_t forced_remap_step_from_env();

// The device to use for `train.device` ("auto": CUDA when available).
std::string trainer_device_name(const std::string& requested);

TrainSummary train_run(const TrainPlan& plan);

}  // namespace localist
