// block_parallel.cpp: see block_parallel.h.
#include "trainer/block_parallel.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>
#include <string>

#include "core/error.h"

namespace localist {
namespace {

Communicator& group_of(torch::autograd::AutogradContext* ctx) {
  return *reinterpret_cast<Communicator*>(static_cast<intptr_t>(ctx->saved_data["group"].toInt()));
}

struct EnterGroup : public torch::autograd::Function<EnterGroup> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    return x.clone();
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto g = grads[0].contiguous().clone();
    group_of(ctx).all_reduce(g, ReduceOp::kSum, "block-parallel input gradient");
    return {g, at::Tensor()};
  }
};

struct LeaveGroup : public torch::autograd::Function<LeaveGroup> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    auto y = x.contiguous().clone();
    reinterpret_cast<Communicator*>(static_cast<intptr_t>(group))
        ->all_reduce(y, ReduceOp::kSum, "block-parallel partial outputs");
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 torch::autograd::variable_list grads) {
    return {grads[0], at::Tensor()};
  }
};

int64_t handle(Communicator& group) { return static_cast<int64_t>(reinterpret_cast<intptr_t>(&group)); }

// Rank r's positions of a sequence of T over n ranks (as BlockShard::seq_range).
std::pair<int64_t, int64_t> positions(int64_t T, int r, int n) { return {T * r / n, T * (r + 1) / n}; }

// Every rank's part (B, its positions, ...) -> the whole (B, T, ...). Parts differ by at
// most one position: each is padded to the longest for the collective.
at::Tensor gather_parts(const at::Tensor& part, int64_t T, Communicator& group, const std::string& what) {
  const int n = group.size();
  const int64_t longest = (T + n - 1) / n;
  auto sizes = part.sizes().vec();
  sizes[1] = longest;
  auto padded = at::zeros(sizes, part.options());
  padded.narrow(1, 0, part.size(1)).copy_(part);
  const auto all = group.all_gather(padded, what);  // (n, B, longest, ...)
  std::vector<at::Tensor> pieces;
  for (int r = 0; r < n; ++r) {
    const auto [a, b] = positions(T, r, n);
    pieces.push_back(all[r].narrow(1, 0, b - a));
  }
  return at::cat(pieces, 1);
}

// The whole (B, T, ...) summed over the ranks -> this rank's part.
at::Tensor reduce_to_part(const at::Tensor& whole, Communicator& group, const std::string& what) {
  const int n = group.size();
  const int64_t T = whole.size(1), longest = (T + n - 1) / n;
  auto sizes = whole.sizes().vec();
  sizes[1] = longest;
  sizes.insert(sizes.begin(), n);
  auto padded = at::zeros(sizes, whole.options());  // (n, B, longest, ...)
  for (int r = 0; r < n; ++r) {
    const auto [a, b] = positions(T, r, n);
    padded[r].narrow(1, 0, b - a).copy_(whole.narrow(1, a, b - a));
  }
  const auto mine = group.reduce_scatter(padded, ReduceOp::kSum, what).squeeze(0);
  const auto [a, b] = positions(T, group.rank(), n);
  return mine.narrow(1, 0, b - a);
}

struct GatherSequence : public torch::autograd::Function<GatherSequence> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& part, int64_t T, int64_t group) {
    ctx->saved_data["group"] = group;
    return gather_parts(part, T, *reinterpret_cast<Communicator*>(static_cast<intptr_t>(group)), "sequence parts");
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return {reduce_to_part(grads[0].contiguous(), group_of(ctx), "sequence-parallel input gradient"), at::Tensor(),
            at::Tensor()};
  }
};

struct ScatterSequence : public torch::autograd::Function<ScatterSequence> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& whole, int64_t group) {
    ctx->saved_data["group"] = group;
    ctx->saved_data["T"] = whole.size(1);
    return reduce_to_part(whole.contiguous(), *reinterpret_cast<Communicator*>(static_cast<intptr_t>(group)),
                          "block-parallel partial outputs (sequence parallel)");
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return {gather_parts(grads[0].contiguous(), ctx->saved_data["T"].toInt(), group_of(ctx),
                         "sequence-parallel output gradient"),
            at::Tensor()};
  }
};

}  // namespace

at::Tensor block_group_enter(const at::Tensor& x, Communicator& group) { return EnterGroup::apply(x, handle(group)); }
at::Tensor block_group_leave(const at::Tensor& x, Communicator& group) { return LeaveGroup::apply(x, handle(group)); }

std::pair<int64_t, int64_t> block_parallel_ffn_range(int64_t hidden, int rank, int bp) {
  return {hidden * rank / bp, hidden * (rank + 1) / bp};
}

BlockShard block_shard_make(const std::shared_ptr<Communicator>& group, std::vector<int64_t> owned_slots,
                            int64_t ffn_hidden, bool sequence_parallel) {
  BlockShard s;
  if (sequence_parallel && group->size() > 1) {
    s.seq_rank = group->rank(), s.seq_ranks = group->size();
    s.gather_seq = [group](const at::Tensor& x, int64_t T) { return GatherSequence::apply(x, T, handle(*group)); };
    s.scatter_seq = [group](const at::Tensor& x) { return ScatterSequence::apply(x, handle(*group)); };
  }
  s.owned_slots = std::move(owned_slots);
  if (ffn_hidden > 0) {
    const auto [a, b] = block_parallel_ffn_range(ffn_hidden, group->rank(), group->size());
    s.ffn_begin = a, s.ffn_size = b - a;
  }
  s.lead = group->rank() == 0;
  // The lambdas keep the group alive as long as the shard.
  s.enter = [group](const at::Tensor& x) { return block_group_enter(x, *group); };
  s.leave = [group](const at::Tensor& x) { return block_group_leave(x, *group); };
  return s;
}

BlockParallel::BlockParallel(std::shared_ptr<Communicator> group, LocalistModel& model, BlockMap map)
    : group_(std::move(group)), model_(model), map_(std::move(map)) {
  map_.validate();
  if (map_.bp != group_->size() || map_.slots() != model_.config().k_max) {
    throw Error("block map (" + map_.describe() + ") does not fit a block-parallel group of " +
                std::to_string(group_->size()) + " ranks and k_max " + std::to_string(model_.config().k_max));
  }
  for (auto& l : model_.layers) {
    block_params_.insert(block_params_.end(), {l->qkv_w, l->qkv_b, l->out_w, l->fc_w, l->fc_b, l->proj_w});
  }
  rebuild_shard();
}

at::Tensor BlockParallel::own_part(size_t i, const at::Tensor& t) const { return t * block_masks_.at(i); }

bool BlockParallel::is_split_param(const at::Tensor& t) const {
  for (const auto& b : block_params_) {
    if (b.is_same(t)) return true;
  }
  return false;
}

void BlockParallel::rebuild_shard() {
  const auto& c = model_.config();
  const int64_t hidden = c.ffn_mult * c.d_model;
  shard_ = block_shard_make(group_, map_.owned_by(group_->rank()), hidden, /*sequence_parallel=*/true);
  // 0/1 masks of the rows (qkv) and columns (output) of the heads this rank owns, and of
  // its FFN part: rows of fc_w and fc_b, columns of proj_w.
  block_masks_.clear();
  const auto [a, b] = block_parallel_ffn_range(hidden, group_->rank(), group_->size());
  for (auto& l : model_.layers) {
    std::vector<at::Tensor> masks{at::zeros_like(l->qkv_w), at::zeros_like(l->qkv_b), at::zeros_like(l->out_w),
                                  at::zeros_like(l->fc_w), at::zeros_like(l->fc_b), at::zeros_like(l->proj_w)};
    for (int64_t slot : shard_.owned_slots) {
      for (auto& v : block_slot_views(masks[0], masks[1], masks[2], c, slot)) v.fill_(1.0);
    }
    masks[3].narrow(0, a, b - a).fill_(1.0);
    masks[4].narrow(0, a, b - a).fill_(1.0);
    masks[5].narrow(1, a, b - a).fill_(1.0);
    block_masks_.insert(block_masks_.end(), masks.begin(), masks.end());
  }
}

void BlockParallel::reassemble() {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < block_params_.size(); ++i) {
    auto owned = (block_params_[i] * block_masks_[i]).contiguous();
    group_->all_reduce(owned, ReduceOp::kSum, "block parameters");
    block_params_[i].copy_(owned);
  }
}

int64_t BlockParallel::apply(const BlockMap& next, const MomentsOf& moments) {
  next.validate();
  if (next.bp != map_.bp || next.slots() != map_.slots() || next.epoch != map_.epoch + 1) {
    throw Error("block map: cannot go from " + map_.describe() + " to " + next.describe() +
                " (needs the next epoch on the same group and slots)");
  }
  // NOTE(block map): every rank must switch at the same step to the same epoch; a rank
  // that disagrees would compute the wrong blocks silently, so it is checked here.
  // Small tensors live where the group's backend carries them (NCCL: on the GPU).
  const auto dev = model_.wte.device();
  auto epochs = at::tensor(std::vector<int64_t>{next.epoch, -next.epoch}, at::kLong).to(dev);
  group_->all_reduce(epochs, ReduceOp::kMax, "block map epoch check");
  if (epochs[0].item<int64_t>() != next.epoch || -epochs[1].item<int64_t>() != next.epoch) {
    throw Error("block map: ranks of group '" + group_->name() + "' disagree on the epoch to apply (this rank: " +
                std::to_string(next.epoch) + ")");
  }
  at::NoGradGuard no_grad;
  const auto& c = model_.config();
  const int me = group_->rank();
  int64_t sent = 0;
  // Moves run in slot order on every rank, so the first unfinished move's two ranks
  // are both waiting on it: no cycle, no deadlock.
  for (const auto& mv : block_map_moves(map_, next)) {
    if (me != mv.from && me != mv.to) continue;
    std::vector<at::Tensor> views;  // per layer: the slot's parameters, then its moments
    for (auto& l : model_.layers) {
      for (auto& v : block_slot_params(*l, c, mv.slot)) views.push_back(v);
      for (auto& v : block_slot_moments(*l, c, mv.slot, moments)) views.push_back(v);
    }
    const std::string what = "block " + std::to_string(mv.slot) + " move (map epoch " + std::to_string(next.epoch) + ")";
    const int tag = static_cast<int>(mv.slot);
    if (me == mv.from) {
      std::vector<at::Tensor> flat;
      for (const auto& v : views) flat.push_back(v.reshape({-1}));
      const auto payload = at::cat(flat).contiguous();
      const auto count = at::tensor(std::vector<int64_t>{payload.numel()}, at::kLong).to(dev);
      group_->send(count, mv.to, tag, what + " size");
      group_->send(payload, mv.to, tag, what);
      sent += payload.numel() * payload.element_size();
    } else {
      auto count = at::zeros({1}, at::dtype(at::kLong).device(dev));
      group_->recv(count, mv.from, tag, what + " size");
      int64_t expected = 0;
      for (const auto& v : views) expected += v.numel();
      if (count.item<int64_t>() != expected) {
        throw Error(what + ": rank " + std::to_string(mv.from) + " sends " + std::to_string(count.item<int64_t>()) +
                    " values, this rank expects " + std::to_string(expected) +
                    " (optimizer state differs between ranks)");
      }
      auto payload = at::empty({expected}, views.front().options());
      group_->recv(payload, mv.from, tag, what);
      int64_t off = 0;
      for (auto& v : views) {
        v.copy_(payload.narrow(0, off, v.numel()).view_as(v));
        off += v.numel();
      }
    }
  }
  // Only owners hold a block's moments: a rank that gave a block away zeroes them.
  for (const auto& mv : block_map_moves(map_, next)) {
    if (me != mv.from) continue;
    for (auto& l : model_.layers) {
      for (auto& v : block_slot_moments(*l, c, mv.slot, moments)) v.zero_();
    }
  }
  map_ = next;
  rebuild_shard();
  return sent;
}

}  // namespace localist
