// SPDX-License-Identifier: Apache-2.0
// dial_config.h: the config keys of the locality dial (DESIGN.md M9): `train.dial` (a
// value, per-layer values or a schedule over steps) and `train.dial_profile` (the
// per-layer profile multiplying it), parsed strictly — every value in [0, 1], errors
// located at file:line:col — and written back into the effective config.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>

#include "core/strict_yaml.h"
#include "trainer/dial_schedule.h"

namespace localist {

// Both keys of the `train` map.
DialSchedule dial_config_parse(StrictMap& train);
// Per-layer values (a constant, a stage, the profile) against the model's layers.
void dial_config_check_layers(StrictMap& train, const DialSchedule& d, int64_t n_layers);
// `dial` and, when it is not uniform, `dial_profile`.
void dial_config_emit(YAML::Emitter& e, const DialSchedule& d);

}  // namespace localist
