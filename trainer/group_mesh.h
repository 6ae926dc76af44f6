// SPDX-License-Identifier: Apache-2.0
// group_mesh.h: the DP x BP mesh of the ranks that train one LLM (DESIGN.md §2): the
// replica's ranks (bp) and the ranks holding the same blocks (dp), each with its data
// plane (NCCL for CUDA tensors when available; MPI otherwise).
// Limits: bp must divide the group's size; ranks of one replica are consecutive.
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>

#include "comm/communicator.h"

namespace localist {

// Ranks r = dp_rank * bp + bp_rank of the group: the bp ranks hold one replica (its
// blocks sharded), the dp ranks hold the same blocks in different replicas.
struct GroupMesh {
  std::shared_ptr<Communicator> ranks;  // every rank of the group
  std::shared_ptr<Communicator> dp;     // the ranks holding the same blocks (ranks itself when bp = 1)
  std::shared_ptr<Communicator> bp;     // one replica's ranks (null when bp = 1)
  // The data plane of dp and bp: the same communicators for CPU tensors, NCCL ones for
  // CUDA tensors (gradients, activations, block moves); the control plane stays on MPI.
  std::shared_ptr<Communicator> dp_data, bp_data, ranks_data;
  int bp_size = 1, dp_size = 1, dp_rank = 0, bp_rank = 0;
  void set_timeout(double seconds);  // of every communicator of the mesh
};
GroupMesh group_mesh_make(const std::shared_ptr<Communicator>& ranks, int64_t block_parallel, const at::Device& device);

}  // namespace localist
