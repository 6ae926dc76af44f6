// SPDX-License-Identifier: Apache-2.0
// pool_section.h: the `pool:` section of the run config (DESIGN.md §1 M11) — parsed
// strictly and validated against the data and train sections: an unknown domain, a
// domain owned twice, an unknown or cyclic parent, a branch step past the end of the
// run, a specialist without data at its branch step, a main left with nothing of its
// own are each a ConfigError naming file:line:column and the key. Also its YAML form in
// the effective config. Internal to launch/run_config.cpp.
#pragma once
#include <yaml-cpp/yaml.h>

#include "core/strict_yaml.h"
#include "data/data_config.h"
#include "pool/pool_config.h"
#include "trainer/train_config.h"

namespace localist {

// `m` is the pool section (absent: the pool is main alone, with train.global_batch).
PoolConfig pool_section_parse(StrictMap m, bool present, const DataConfig& data, const TrainConfig& train);
void pool_section_emit(YAML::Emitter& e, const PoolConfig& pool);

}  // namespace localist
