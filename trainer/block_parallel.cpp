// block_parallel.cpp: see block_parallel.h.
#include "trainer/block_parallel.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>

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

}  // namespace

at::Tensor block_group_enter(const at::Tensor& x, Communicator& group) { return EnterGroup::apply(x, handle(group)); }
at::Tensor block_group_leave(const at::Tensor& x, Communicator& group) { return LeaveGroup::apply(x, handle(group)); }

BlockShard block_shard_make(const std::shared_ptr<Communicator>& group, std::vector<int64_t> owned_slots) {
  BlockShard s;
  s.owned_slots = std::move(owned_slots);
  s.lead = group->rank() == 0;
  // The lambdas keep the group alive as long as the shard.
  s.enter = [group](const at::Tensor& x) { return block_group_enter(x, *group); };
  s.leave = [group](const at::Tensor& x) { return block_group_leave(x, *group); };
  return s;
}

std::vector<int64_t> block_slots_round_robin(int64_t k_max, int rank, int size) {
  std::vector<int64_t> out;
  for (int64_t s = rank; s < k_max; s += size) out.push_back(s);
  return out;
}

}  // namespace localist
