// SPDX-License-Identifier: Apache-2.0
// run_config.h: the whole run config: one YAML file parsed strictly into typed
// sections (unknown key, wrong type, out-of-range value: ConfigError naming
// file:line:column and the key path), checked against the world size when known,
// and written back out as the effective config (every value, defaults filled in).
// Reference with every key and its default: configs/reference.yaml.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "comm/distributed_config.h"
#include "data/data_config.h"
#include "model/model_config.h"
#include "pool/pool_config.h"
#include "recruitment/recruitment_config.h"
#include "trainer/train_config.h"

namespace localist {

struct RunSection {
  std::string name = "run";
  std::string dir = "runs/run";  // run directory (relative paths: from the working directory)
  int64_t seed = 1234;
  std::string log_level = "info";
};

struct RunConfig {
  RunSection run;
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  DistributedConfig distributed;
  RecruitmentConfig recruitment;
  PoolConfig pool;   // main alone without a `pool:` section
  std::string file;  // where it was read from
};

// A command-line override "a.b.c=value" (value in YAML syntax, e.g. 0.4 or
// "{schedule: uniform, lo: 0, hi: 1}"); applied before the strict parse, so the same
// checks hold. Keys name mappings only (not list entries).
using ConfigOverrides = std::vector<std::string>;

// world_size 0: unknown (the mesh and batch divisibility checks are skipped).
RunConfig run_config_parse(const std::string& yaml_text, const std::string& file, int world_size,
                           const ConfigOverrides& overrides = {});
RunConfig run_config_load(const std::string& path, int world_size, const ConfigOverrides& overrides = {});

// The effective config as YAML; parsing it gives back the same config.
std::string run_config_to_yaml(const RunConfig& config);

// Resuming: which of the config's values differ from those a checkpoint was trained
// with (both effective configs, YAML text). `fixed`: the model and the data order
// (model.*, data.sources, run.seed, train.global_batch; the pool is checked against the
// checkpoint's LLMs when the run starts: a config may add specialists that branch later) — a resume with any of these
// changed is refused; `schedules`: train.steps, the LR and dial schedules — used from
// the config only with --override-schedules. Everything else (logging, evaluation,
// checkpoint cadence, threads, distributed.*) is taken from the config.
struct ResumeConflicts {
  std::vector<std::string> fixed, schedules;
};
ResumeConflicts run_config_resume_conflicts(const std::string& checkpoint_yaml, const std::string& config_yaml);

}  // namespace localist
