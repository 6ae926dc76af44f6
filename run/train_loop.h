// SPDX-License-Identifier: Apache-2.0
// train_loop.h: the training loop over the pool's model groups (DESIGN.md §2): every
// LLM advances in lockstep, one optimizer step each per global step (a rank trains its
// LLMs in pool order); at every step boundary the world agrees, in one small
// all-reduce, on a stop signal (SIGTERM/SIGUSR1 on any rank: checkpoint and stop), on
// whether every rank's background checkpoint is on disk (then it is committed) and on
// which ranks have metrics records queued for the coordinator (record_relay.h). At a
// branch step the pool branches and re-plans before the step; recruitment rounds,
// evaluation and checkpoints run at the cadence the train config sets.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "pool/pool.h"
#include "pool/pool_spawn.h"
#include "run/fault_injection.h"
#include "run/record_relay.h"
#include "run/run_checkpoints.h"
#include "trainer/model_group.h"
#include "trainer/train_step.h"

namespace localist {

struct LoopSetup {
  std::shared_ptr<Communicator> world;
  int64_t start_step = 0;
  double timeout_s = 600.0;  // every communicator's bound once the first step is done
  FaultInjection fault;
  int64_t forced_remap_step = -1;
};

// The wall time of one group's step, from the end of the previous step's training to the
// end of this one's, in the loop's parts (the train step's own parts are in StepStats):
// the previous step's evaluation and checkpoint, this step's boundary agreement (stop
// flags, checkpoint commit, record relay) and its recruitment, spawn and branch rounds.
struct StepTime {
  double wall_ms = 0;
  double eval_ms = 0, checkpoint_ms = 0, boundary_ms = 0, rounds_ms = 0;
  double train_ms = 0;  // the group's train_step
};

struct LoopHooks {
  // After each of this rank's group steps: the step record (null: none this step). The
  // loop posts it from the group's lead; the hook may also update the progress line.
  std::function<nlohmann::json(const ModelGroup&, int64_t step, const StepStats&, const std::vector<double>& dial,
                               double lr, const StepTime& time, bool log_step)>
      report;
  // On each group's lead at the eval cadence: the group's evaluation record (null: none).
  std::function<nlohmann::json(ModelGroup&, int64_t step)> evaluate;
  std::function<void()> interrupted;  // before the stop checkpoint is written
};

struct LoopEnd {
  int64_t steps = 0;    // the step the loop stopped before
  int stop_signal = 0;  // the signal that stopped it early, else 0
  // This rank's time in the step-boundary agreement and record relay (the pool's control
  // plane) and in whole steps, over the steps after the first (start-up excluded).
  double control_ms = 0, step_ms = 0;
  int64_t timed_steps = 0;
  SpawnTimes spawn;  // this rank's time in spawn rounds (pool.recruit)
};

// Runs the steps [setup.start_step, train.steps) of the pool; collective over the world.
LoopEnd train_loop(const LoopSetup& setup, Pool& pool, RunCheckpoints& checkpoints, RecordRelay& relay,
                   const LoopHooks& hooks);

}  // namespace localist
