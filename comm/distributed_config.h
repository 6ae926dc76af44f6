// distributed_config.h: the typed `distributed:` section (parsed in launch/run_config.cpp).
#pragma once
#include <cstdint>

namespace localist {

struct DistributedConfig {
  // Ranks that together hold one model replica, its semantic blocks sharded among them
  // (DESIGN.md §2). Must divide the world size; data-parallel size = world / bp.
  int64_t block_parallel = 1;
};

}  // namespace localist
