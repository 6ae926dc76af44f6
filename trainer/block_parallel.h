// block_parallel.h: the conjugate autograd pair that lets a group of ranks share one
// model replica's semantic blocks (DESIGN.md §2): `enter` is the identity forward and
// sums the gradient over the group backward; `leave` sums partial outputs forward and
// is the identity backward. block_shard_make() wraps them for LocalistModel.
// Limits: placement is round-robin by slot (slot % group size); training with
// block_parallel > 1 (DP groups per block, parameter moves) is not wired up yet.
#pragma once
#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "model/localist_model.h"

namespace localist {

at::Tensor block_group_enter(const at::Tensor& x, Communicator& group);
at::Tensor block_group_leave(const at::Tensor& x, Communicator& group);

// A shard for `group` owning `owned_slots`; the group's rank 0 is the lead.
BlockShard block_shard_make(const std::shared_ptr<Communicator>& group, std::vector<int64_t> owned_slots);

// Round-robin placement: the slots of k_max that group rank `rank` of `size` owns.
std::vector<int64_t> block_slots_round_robin(int64_t k_max, int rank, int size);

}  // namespace localist
