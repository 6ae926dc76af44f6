// SPDX-License-Identifier: Apache-2.0
// block_shard.h: the collectives a layer runs with when a group of ranks shares one model
// replica (DESIGN.md §2), as autograd pairs: `enter` is the identity forward and sums the
// gradient over the group backward; `leave` sums partial outputs forward and is the
// identity backward; the sequence gather and reduce-scatter are each other's backward;
// the vocabulary-parallel cross-entropy sums its softmax over the group's rows.
// Limits: the group must outlive every graph built with its shard.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "comm/communicator.h"
#include "model/localist_model.h"

namespace localist {

at::Tensor block_group_enter(const at::Tensor& x, Communicator& group);
at::Tensor block_group_leave(const at::Tensor& x, Communicator& group);

// A shard for `group` owning `owned_slots` and, with ffn_hidden > 0, its contiguous
// part of the FFN's ffn_hidden units (block_parallel_ffn_range); with sequence_parallel,
// its part of the positions for the rest (BlockShard::seq_range), and with vocab > 0
// also its contiguous part of the vocabulary's rows (embedding, head and loss). Rank 0
// is the lead.
BlockShard block_shard_make(const std::shared_ptr<Communicator>& group, std::vector<int64_t> owned_slots,
                            int64_t ffn_hidden = 0, bool sequence_parallel = false, int64_t vocab = 0);
// Rank r of bp's contiguous part of `hidden` units (FFN units, vocabulary rows): [first, second).
std::pair<int64_t, int64_t> block_parallel_ffn_range(int64_t hidden, int rank, int bp);

}  // namespace localist
