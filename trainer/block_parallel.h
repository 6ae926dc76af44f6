// block_parallel.h: a group of ranks sharing one model replica's semantic blocks
// (DESIGN.md §2). The conjugate autograd pair: `enter` is the identity forward and sums
// the gradient over the group backward; `leave` sums partial outputs forward and is the
// identity backward. BlockParallel holds the versioned block map, this rank's shard,
// and applies a new map by moving block parameters and optimizer moments point to point.
// The FFN is split as well (each rank its contiguous part of the hidden units), and
// what neither splits (embeddings, norms, residual stream, head, loss) runs sequence
// parallel: each rank its part of the positions.
// Limits: every rank keeps full-size block and FFN tensors (only owners' rows are
// trained and authoritative); memory is not sharded yet.
#pragma once
#include <functional>
#include <utility>
#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "model/localist_model.h"
#include "recruitment/block_map.h"
#include "recruitment/block_slots.h"

namespace localist {

at::Tensor block_group_enter(const at::Tensor& x, Communicator& group);
at::Tensor block_group_leave(const at::Tensor& x, Communicator& group);

// A shard for `group` owning `owned_slots` and, with ffn_hidden > 0, its contiguous
// part of the FFN's ffn_hidden units (block_parallel_ffn_range); with sequence_parallel,
// its part of the positions for the rest (BlockShard::seq_range). Rank 0 is the lead.
BlockShard block_shard_make(const std::shared_ptr<Communicator>& group, std::vector<int64_t> owned_slots,
                            int64_t ffn_hidden = 0, bool sequence_parallel = false);
// Rank r of bp's hidden units of an FFN of `hidden` units: [first, second).
std::pair<int64_t, int64_t> block_parallel_ffn_range(int64_t hidden, int rank, int bp);

class BlockParallel {
 public:
  BlockParallel(std::shared_ptr<Communicator> group, LocalistModel& model, BlockMap map);
  const BlockMap& map() const { return map_; }
  const BlockShard& shard() const { return shard_; }
  // The tensors split over the group: the block tensors and the FFN's fc_w, fc_b, proj_w.
  const std::vector<at::Tensor>& split_params() const { return block_params_; }
  bool is_split_param(const at::Tensor& t) const;
  // `t` (one of split_params(), or a moment of the same shape) with zeros outside this
  // rank's part: summed over the group, the parts make the whole.
  at::Tensor own_part(size_t split_index, const at::Tensor& t) const;
  // After an optimizer step: every rank copies the owners' values of every block, so the
  // replica's ranks hold the same (true) model.
  void reassemble();
  // Switches to `next` (epoch must be the current one + 1, the same on every rank): each
  // moved block's parameters and moments go from the old owner to the new one; the old
  // owner's moments for it are zeroed. Returns the bytes this rank sent.
  int64_t apply(const BlockMap& next, const MomentsOf& moments);

 private:
  void rebuild_shard();
  std::shared_ptr<Communicator> group_;
  LocalistModel& model_;
  BlockMap map_;
  BlockShard shard_;
  std::vector<at::Tensor> block_params_, block_masks_;
};

}  // namespace localist
