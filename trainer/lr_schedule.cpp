// SPDX-License-Identifier: Apache-2.0
// lr_schedule.cpp: see lr_schedule.h.
#include "trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace localist {

double LrSchedule::at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps) return lr * double(step + 1) / double(warmup_steps);
  if (kind == "constant") return lr;
  const int64_t last = std::max<int64_t>(total_steps - 1, 1);
  if (kind == "wsd") {
    const int64_t decay_start =
        std::max(warmup_steps, total_steps - static_cast<int64_t>(decay_fraction * total_steps));
    if (step < decay_start) return lr;
    const double f = std::min(1.0, double(step - decay_start) / double(std::max<int64_t>(last - decay_start, 1)));
    return lr + (min_lr - lr) * f;
  }
  const double f = std::min(1.0, double(step - warmup_steps) / double(std::max<int64_t>(last - warmup_steps, 1)));
  if (kind == "linear") return lr + (min_lr - lr) * f;
  return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * f));  // cosine
}

}  // namespace localist
