// SPDX-License-Identifier: Apache-2.0
// lr_schedule.h: learning-rate schedules over optimizer steps: constant, linear and
// cosine decay to min_lr, and WSD (warmup, stable, decay over the last
// decay_fraction of the steps); all start with a linear warmup.
#pragma once
#include <cstdint>
#include <string>

namespace localist {

struct LrSchedule {
  std::string kind = "cosine";  // constant | linear | cosine | wsd
  double lr = 3e-3;
  double min_lr = 3e-4;
  int64_t warmup_steps = 20;
  int64_t total_steps = 200;
  double decay_fraction = 0.2;  // wsd only

  double at(int64_t step) const;
};

}  // namespace localist
