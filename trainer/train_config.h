// SPDX-License-Identifier: Apache-2.0
// train_config.h: the typed `train:` section (parsed in launch/run_config.cpp).
#pragma once
#include <cstdint>

#include <string>

#include "trainer/dial_schedule.h"
#include "trainer/lr_schedule.h"

namespace localist {

struct TrainConfig {
  int64_t steps = 200;
  int64_t global_batch = 16;  // sequences per optimizer step, over all data-parallel ranks
  int64_t micro_batch = 8;    // sequences per forward/backward on one rank (accumulation)
  LrSchedule lr;              // lr, min_lr, warmup_steps, kind (lr_schedule), decay_fraction
  double weight_decay = 0.1;
  bool decay_embeddings = false;  // weight decay on embeddings, norms and biases too
  double beta1 = 0.9, beta2 = 0.95;
  double grad_clip = 1.0;    // 0 disables clipping
  double penalty_mu = 0.01;  // μ: weight of the group-sparsity penalty Ω (M5)
  double penalty_nu = 0.1;   // ν: weight of the routing mutual information I_π (M5)
  int64_t log_every = 10;
  int64_t eval_every = 100;               // 0: only at the end
  int64_t eval_windows = 32;              // held-out windows per source for periodic evaluation
  int64_t checkpoint_every = 0;           // 0: only the final checkpoint
  int64_t keep_checkpoints = 3;           // newest complete checkpoints kept
  int64_t keep_checkpoint_every = 0;      // also keep forever those whose step is a multiple (0: none)
  bool activation_checkpointing = false;  // replay each layer in backward: less memory, ~1 more forward
  bool async_checkpoint = true;           // periodic checkpoints: training waits only for the host copy
  std::string rules;                      // rules file (M6), reloaded when it changes; "" for none
  std::string precision = "auto";  // auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16 (autocast on CPU too)
  std::string device = "auto";     // auto | cpu | cuda
  std::string tensorboard;         // "": no event files; "true": <run.dir>/tensorboard; else that directory
  int64_t threads = 0;  // LibTorch (and MKL) threads per rank; 0: OMP_NUM_THREADS, else cores / ranks per node
  DialSchedule dial;
};

}  // namespace localist
