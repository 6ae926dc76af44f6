// SPDX-License-Identifier: Apache-2.0
// block_shard.cpp: see block_shard.h.
#include "parallel/block_shard.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>
#include <string>

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
  if (T % n == 0) {
    // Equal parts (the usual case): gathered as they are, one copy into (B, T, ...).
    auto sizes = part.sizes().vec();
    sizes[1] = T;
    return group.all_gather(part.contiguous(), what).transpose(0, 1).reshape(sizes);
  }
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
  if (T % n == 0) {
    // Equal parts: one copy into (n, B, T/n, ...), no padding.
    auto split = whole.sizes().vec();
    split[1] = T / n;
    split.insert(split.begin() + 1, n);  // (B, n, T/n, ...)
    return group.reduce_scatter(whole.reshape(split).transpose(0, 1).contiguous(), ReduceOp::kSum, what).squeeze(0);
  }
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

// Cross-entropy of logits split by vocabulary rows (Megatron's vocabulary-parallel
// loss): each rank holds rows [v0, v0 + n) of every position's logits; the maximum, the
// sum of exponentials and the target's logit are reduced over the group, so every rank
// gets the per-token loss over the whole vocabulary (0 at `ignore` targets). Backward:
// this rank's rows of softmax − one-hot, times the incoming per-token gradient.
struct VocabCrossEntropy : public torch::autograd::Function<VocabCrossEntropy> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& logits, const at::Tensor& targets,
                            int64_t v0, int64_t ignore, int64_t group) {
    Communicator& g = *reinterpret_cast<Communicator*>(static_cast<intptr_t>(group));
    const auto l = logits.detach();
    const int64_t n = l.size(-1);
    auto m = std::get<0>(l.max(-1)).contiguous();
    g.all_reduce(m, ReduceOp::kMax, "vocabulary-parallel loss (maximum)");
    const auto e = (l - m.unsqueeze(-1)).exp();
    auto s = e.sum(-1).contiguous();
    g.all_reduce(s, ReduceOp::kSum, "vocabulary-parallel loss (sum of exponentials)");
    const auto local = targets - v0;
    const auto inside = local.ge(0) & local.lt(n);
    const auto index = local.clamp(0, n - 1).unsqueeze(-1);
    auto target_logit = (l.gather(-1, index).squeeze(-1) * inside.to(l.scalar_type())).contiguous();
    g.all_reduce(target_logit, ReduceOp::kSum, "vocabulary-parallel loss (target logits)");
    const auto valid = targets.ne(ignore);
    ctx->save_for_backward({e / s.unsqueeze(-1), index, inside, valid});
    return (s.log() + m - target_logit) * valid.to(l.scalar_type());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto g = saved[0].clone();
    g.scatter_add_(-1, saved[1], -saved[2].to(g.scalar_type()).unsqueeze(-1));
    g.mul_((grads[0] * saved[3].to(g.scalar_type())).unsqueeze(-1));
    return {g, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor block_group_enter(const at::Tensor& x, Communicator& group) { return EnterGroup::apply(x, handle(group)); }
at::Tensor block_group_leave(const at::Tensor& x, Communicator& group) { return LeaveGroup::apply(x, handle(group)); }

std::pair<int64_t, int64_t> block_parallel_ffn_range(int64_t hidden, int rank, int bp) {
  return {hidden * rank / bp, hidden * (rank + 1) / bp};
}

BlockShard block_shard_make(const std::shared_ptr<Communicator>& group, std::vector<int64_t> owned_slots,
                            int64_t ffn_hidden, bool sequence_parallel, int64_t vocab) {
  BlockShard s;
  if (sequence_parallel && group->size() > 1) {
    s.seq_rank = group->rank(), s.seq_ranks = group->size();
    s.gather_seq = [group](const at::Tensor& x, int64_t T) { return GatherSequence::apply(x, T, handle(*group)); };
    s.scatter_seq = [group](const at::Tensor& x) { return ScatterSequence::apply(x, handle(*group)); };
    if (vocab > 0) {
      const auto [a, b] = block_parallel_ffn_range(vocab, group->rank(), group->size());
      s.vocab_begin = a, s.vocab_size = b - a;
      s.vocab_cross_entropy = [group, a = a](const at::Tensor& logits, const at::Tensor& targets, int64_t ignore) {
        return VocabCrossEntropy::apply(logits, targets, a, ignore, handle(*group));
      };
    }
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

}  // namespace localist
