// SPDX-License-Identifier: Apache-2.0
// plan_command.h: `localist plan CONFIG --ranks N`: the job a config makes on N ranks,
// without training — the pool map, each LLM's mesh and block placement, per rank the
// bytes held and sent per step, whether it fits the device and the smallest change that
// would (run/job_plan.h). Limits: plans the start of the run (or after --after-spawn);
// recruitment's later blocks are not foreseen.
#pragma once
#include <string>
#include <vector>

#include "launch/run_config.h"
#include "run/job_plan.h"

namespace localist {

struct PlanArgs {
  std::string config;
  std::vector<std::string> overrides;
  int ranks = 1, ranks_per_node = 0;      // 0: all on one node
  std::string device = "cpu";             // cpu | h100 | h200 | a GPU's memory ("48GiB", "80GB")
  std::string after_spawn;                // a domain: the pool after a specialist is spawned for it
  double intra_gbps = 0, inter_gbps = 0;  // 0: the device's defaults
  long long vocab = 0;                    // 0: the config's tokenizer
  bool json = false;
};

// What job_plan is asked about `cfg` on args.ranks ranks (the pool after every declared
// branch, or after --after-spawn). Throws ConfigError for a bad --device or --after-spawn.
PlanInput plan_input_from_config(const RunConfig& cfg, const PlanArgs& args);

int run_plan(const PlanArgs& args);

}  // namespace localist
