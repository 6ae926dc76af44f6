// SPDX-License-Identifier: Apache-2.0
// distributed_config.h: the typed `distributed:` section (parsed in launch/run_config.cpp).
#pragma once
#include <cstdint>
#include <string>

namespace localist {

struct DistributedConfig {
  // Ranks that together hold one model replica, its semantic blocks sharded among them
  // (DESIGN.md §2). Must divide the world size; data-parallel size = world / bp.
  int64_t block_parallel = 1;
  // Seconds any collective or point-to-point may wait before the job is ended with a
  // message naming the operation and group. Must cover rank 0's evaluation and
  // checkpoint writes, which the other ranks wait out at their next collective.
  double timeout_s = 600.0;
  // The same bound for start-up (MPI and data set-up, initial parameter broadcast, the
  // first step), which can be much slower than a steady-state step.
  double startup_timeout_s = 1800.0;
  // Gradient bucket size (MB) for the data-parallel all-reduce overlapped with backward.
  double bucket_mb = 1.0;
  // ZeRO stage: 0 (every data-parallel rank keeps all AdamW moments) or 1 (the moments
  // of the replicated parameters are sharded over the data-parallel ranks).
  int64_t zero = 0;
  // Under block_parallel > 1, whether the embedding (and the head tied to it) is split
  // over the replica's ranks by vocabulary rows: "on", "off", or "auto" (on when the
  // vocabulary has more rows than a micro-batch has tokens, where its gradient traffic
  // and memory outweigh the activations the split adds to the wire).
  std::string vocab_parallel = "auto";
};

}  // namespace localist
