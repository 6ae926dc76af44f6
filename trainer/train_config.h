// train_config.h: the typed `train:` section (parsed in launch/run_config.cpp).
#pragma once
#include <cstdint>

#include "trainer/dial_schedule.h"

namespace localist {

struct TrainConfig {
  int64_t steps = 200;
  int64_t global_batch = 16;  // sequences per optimizer step, over all data-parallel ranks
  int64_t micro_batch = 8;    // sequences per forward/backward on one rank (accumulation)
  double lr = 3e-3;
  double weight_decay = 0.1;
  double grad_clip = 1.0;     // 0 disables clipping
  int64_t warmup_steps = 20;
  int64_t log_every = 10;
  DialSchedule dial;
};

}  // namespace localist
