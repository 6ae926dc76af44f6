// SPDX-License-Identifier: Apache-2.0
// train_command.h: `localist train`: the config checked against the launch, the data and
// the rules file checked before anything is written, then a dry run's report or the run
// (run/train_run.h), its one summary line, and on several ranks the job's end
// (launch/job_end.h). Limits: one run per process.
#pragma once
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "launch/run_config.h"
#include "run/train_run.h"

namespace localist {

struct TrainArgs {
  std::string config;               // the run config (YAML)
  bool dry_run = false;             // check config and data, write the effective config, do not train
  int world_size = 0;               // with dry_run: the world to check for (0: the launch's)
  ConfigOverrides overrides;        // --set key=value
  std::string resume;               // "", "auto" or a checkpoint path
  bool override_schedules = false;  // on resume, this config's schedules win
};

// The run's plan (run/train_run.h) from its config and effective YAML, as `localist train`
// makes it: one process until the caller sets `world`; on resume its `check_resume`
// refuses the differences from the checkpoint's config that cannot continue it.
TrainPlan train_plan_from_config(const RunConfig& cfg, const std::string& effective, const TrainArgs& args);

// `world` is set to the MPI world once training on several ranks has started (and reset
// when the job has ended), so that the caller's error handler can end every rank.
int run_train(const TrainArgs& args, std::shared_ptr<Communicator>& world);

}  // namespace localist
