// SPDX-License-Identifier: Apache-2.0
// zero_optimizer.cpp: see zero_optimizer.h.
#include "parallel/zero_optimizer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace localist {

ZeroAdamW::ZeroAdamW(std::shared_ptr<Communicator> dp, std::vector<at::Tensor> params, std::vector<double> weight_decay,
                     Options options)
    : dp_(std::move(dp)), params_(std::move(params)), weight_decay_(std::move(weight_decay)), options_(options) {
  if (params_.empty()) throw Error("ZeRO: no parameters to shard");
  if (weight_decay_.size() != params_.size()) throw Error("ZeRO: one weight decay per parameter is needed");
  for (const auto& p : params_) {
    if (!p.is_contiguous()) throw Error("ZeRO: parameters must be contiguous");
    offset_.push_back(total_);
    total_ += p.numel();
  }
  const int64_t n = dp_->size(), r = dp_->rank();
  chunk_ = zero_chunk_numel(total_, n);
  const int64_t begin = r * chunk_, end = begin + chunk_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const int64_t a = std::max(begin, offset_[i]), b = std::min(end, offset_[i] + params_[i].numel());
    if (a < b) segments_.push_back({i, a - offset_[i], a - begin, b - a});
  }
  const auto& first = params_.front();
  const auto comm_device = dp_->carries_device(first.device()) ? first.device() : at::Device(at::kCPU);
  flat_grad_ = at::zeros({chunk_ * n}, first.options().device(comm_device));
  chunk_grad_ = at::zeros({chunk_}, first.options());
  exp_avg_ = at::zeros({chunk_}, first.options());
  exp_avg_sq_ = at::zeros({chunk_}, first.options());
  steps_.assign(params_.size(), 0);
  updated_.assign(params_.size(), 0);
}

void ZeroAdamW::reduce_gradients(const std::string& what) {
  at::NoGradGuard no_grad;
  // Which parameters got a gradient anywhere: they alone take a step (collectively). The
  // flags travel where the gradients do (NCCL: on the GPU) and are read back once.
  std::vector<float> local(params_.size(), 0.0f);
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& g = params_[i].grad();
    auto slot = flat_grad_.narrow(0, offset_[i], params_[i].numel());
    if (g.defined()) {
      slot.copy_(g.reshape({-1}));
      local[i] = 1.0f;
    } else {
      slot.zero_();
    }
  }
  auto has = at::tensor(local, at::kFloat).to(flat_grad_.device());
  dp_->all_reduce(has, ReduceOp::kMax, what + " (which parameters have gradients)");
  const auto host = has.cpu();
  for (size_t i = 0; i < params_.size(); ++i) updated_[i] = host.data_ptr<float>()[i] > 0 ? 1 : 0;
  chunk_grad_.copy_(dp_->reduce_scatter(flat_grad_, ReduceOp::kSum, what));
}

double ZeroAdamW::chunk_grad_square_sum() const {
  at::NoGradGuard no_grad;
  return chunk_grad_.to(at::kDouble).pow(2).sum().item<double>();
}

void ZeroAdamW::scale_gradients(double factor) {
  at::NoGradGuard no_grad;
  chunk_grad_.mul_(factor);
}

void ZeroAdamW::step(double lr, const std::string& what) {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) steps_[i] += updated_[i];
  auto mine = at::zeros({chunk_}, chunk_grad_.options());  // this rank's updated parameter values
  for (const Segment& s : segments_) {
    auto p = mine.narrow(0, s.chunk_offset, s.length);
    p.copy_(params_[s.param].view({-1}).narrow(0, s.param_offset, s.length));
    if (!updated_[s.param]) continue;
    // torch::optim::AdamW's arithmetic, in its order (decoupled decay first).
    const double wd = weight_decay_[s.param];
    if (wd != 0) p.mul_(1 - lr * wd);
    const auto g = chunk_grad_.narrow(0, s.chunk_offset, s.length);
    auto m = exp_avg_.narrow(0, s.chunk_offset, s.length), v = exp_avg_sq_.narrow(0, s.chunk_offset, s.length);
    const double step = static_cast<double>(steps_[s.param]);
    const double bc1 = 1 - std::pow(options_.beta1, step), bc2 = 1 - std::pow(options_.beta2, step);
    m.mul_(options_.beta1).add_(g, 1 - options_.beta1);
    v.mul_(options_.beta2).addcmul_(g, g, 1 - options_.beta2);
    const auto denom = (v.sqrt() / std::sqrt(bc2)).add_(options_.eps);
    p.addcdiv_(m, denom, -(lr / bc1));
  }
  const auto comm_device = flat_grad_.device();
  const auto all = dp_->all_gather(mine.to(comm_device), what).reshape({-1});
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!updated_[i]) continue;
    params_[i].view({-1}).copy_(all.narrow(0, offset_[i], params_[i].numel()));
  }
}

std::vector<FullMoments> ZeroAdamW::gather_state(const std::string& what) const {
  at::NoGradGuard no_grad;
  const auto comm_device = flat_grad_.device();
  const auto m = dp_->all_gather(exp_avg_.to(comm_device), what + " (exp_avg)").reshape({-1});
  const auto v = dp_->all_gather(exp_avg_sq_.to(comm_device), what + " (exp_avg_sq)").reshape({-1});
  std::vector<FullMoments> out(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    if (steps_[i] == 0) continue;
    const auto& p = params_[i];
    out[i].exp_avg = m.narrow(0, offset_[i], p.numel()).view_as(p).to(p.device(), false, true);
    out[i].exp_avg_sq = v.narrow(0, offset_[i], p.numel()).view_as(p).to(p.device(), false, true);
    out[i].step = steps_[i];
  }
  return out;
}

void ZeroAdamW::load_state(const std::vector<FullMoments>& state) {
  at::NoGradGuard no_grad;
  if (state.size() != params_.size()) throw Error("ZeRO: optimizer state for another parameter list");
  exp_avg_.zero_();
  exp_avg_sq_.zero_();
  for (size_t i = 0; i < params_.size(); ++i) {
    steps_[i] = state[i].exp_avg.defined() ? state[i].step : 0;
    if (!state[i].exp_avg.defined()) continue;
    if (state[i].exp_avg.numel() != params_[i].numel() || state[i].exp_avg_sq.numel() != params_[i].numel()) {
      throw Error("ZeRO: optimizer state of parameter " + std::to_string(i) + " has the wrong size");
    }
  }
  for (const Segment& s : segments_) {
    if (!state[s.param].exp_avg.defined()) continue;
    const auto src = [&](const at::Tensor& t) { return t.reshape({-1}).narrow(0, s.param_offset, s.length); };
    exp_avg_.narrow(0, s.chunk_offset, s.length).copy_(src(state[s.param].exp_avg));
    exp_avg_sq_.narrow(0, s.chunk_offset, s.length).copy_(src(state[s.param].exp_avg_sq));
  }
}

void ZeroAdamW::load_moments(const std::map<const void*, FullMoments>& state) {
  std::vector<FullMoments> in_order(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto it = state.find(params_[i].unsafeGetTensorImpl());
    if (it != state.end()) in_order[i] = it->second;
  }
  load_state(in_order);
}

int64_t ZeroAdamW::index_of(const at::Tensor& p) const {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].is_same(p)) return static_cast<int64_t>(i);
  }
  return -1;
}

int64_t ZeroAdamW::state_bytes() const {
  return (exp_avg_.numel() + exp_avg_sq_.numel()) * static_cast<int64_t>(exp_avg_.element_size());
}

}  // namespace localist
