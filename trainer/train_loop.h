// train_loop.h: the training loop over the model groups of a run (DESIGN.md §2): all
// groups advance in lockstep, one optimizer step each per global step; at every step
// boundary the world agrees, in one small all-reduce, on a stop signal (SIGTERM/SIGUSR1
// on any rank: checkpoint and stop) and on whether every rank's background checkpoint
// is on disk (then it is committed); recruitment rounds, evaluation and checkpoints
// run at the cadence the train config sets. Today a run holds one group.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "trainer/fault_injection.h"
#include "trainer/model_group.h"
#include "trainer/run_checkpoints.h"
#include "trainer/train_step.h"

namespace localist {

struct LoopSetup {
  std::shared_ptr<Communicator> world;
  int64_t start_step = 0;
  double timeout_s = 600.0;  // every communicator's bound once the first step is done
  FaultInjection fault;
  int64_t forced_remap_step = -1;
};

struct LoopHooks {
  // After each group's step (every rank; the hook decides what the lead writes).
  std::function<void(const ModelGroup&, int64_t step, const StepStats&, const std::vector<double>& dial, double lr,
                     double ms, bool log_step)> report;
  std::function<void(const nlohmann::json&)> record;  // a recruitment round's record
  std::function<void(int64_t step)> evaluate;         // world rank 0 only, at the eval cadence
  std::function<void()> interrupted;                  // before the stop checkpoint is written
};

struct LoopEnd {
  int64_t steps = 0;     // the step the loop stopped before
  int stop_signal = 0;   // the signal that stopped it early, else 0
  StepStats last;        // the last step's statistics (of the first group)
};

// Runs the steps [setup.start_step, train.steps) of every group; collective over the world.
LoopEnd train_loop(const LoopSetup& setup, const std::vector<ModelGroup*>& groups, RunCheckpoints& checkpoints,
                   const LoopHooks& hooks);

}  // namespace localist
