// SPDX-License-Identifier: Apache-2.0
// group_mesh.cpp: see group_mesh.h.
#include "trainer/group_mesh.h"

#include <string>

#include "comm/nccl_communicator.h"
#include "core/error.h"

namespace localist {

void GroupMesh::set_timeout(double seconds) {
  for (auto* c : {&ranks, &dp, &bp, &dp_data, &bp_data, &ranks_data}) {
    if (*c) (*c)->set_timeout(seconds);
  }
}

GroupMesh group_mesh_make(const std::shared_ptr<Communicator>& ranks, int64_t block_parallel,
                          const at::Device& device) {
  const int bp = static_cast<int>(block_parallel);
  if (bp < 1 || ranks->size() % bp != 0) {
    throw ConfigError("distributed.block_parallel: " + std::to_string(bp) + " does not divide the world size " +
                      std::to_string(ranks->size()));
  }
  GroupMesh m;
  m.bp_size = bp;
  m.dp_rank = ranks->rank() / bp, m.dp_size = ranks->size() / bp, m.bp_rank = ranks->rank() % bp;
  m.ranks = ranks;
  m.dp = ranks;
  if (bp > 1) {
    m.dp = ranks->split(m.bp_rank, m.dp_rank, "dp[" + std::to_string(m.bp_rank) + "]");
    m.bp = ranks->split(m.dp_rank, m.bp_rank, "bp[" + std::to_string(m.dp_rank) + "]");
  }
  m.dp_data = data_plane_for(m.dp, device);
  if (m.bp) m.bp_data = data_plane_for(m.bp, device);
  m.ranks_data = m.bp ? data_plane_for(ranks, device) : m.dp_data;
  return m;
}

}  // namespace localist
