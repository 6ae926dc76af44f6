// SPDX-License-Identifier: Apache-2.0
// grad_sync.cpp: see grad_sync.h.
#include "parallel/grad_sync.h"

#include <ATen/ATen.h>

#include <chrono>

#include "core/check.h"
#include "core/error.h"

namespace localist {

GradientSync::GradientSync(std::shared_ptr<Communicator> group, std::vector<at::Tensor> params, int64_t bucket_bytes)
    : group_(std::move(group)), params_(std::move(params)) {
  const size_t n = params_.size();
  bucket_of_.assign(n, 0);
  offset_.assign(n, 0);
  arrived_.assign(n, 0);
  int64_t size = 0;
  for (size_t k = n; k-- > 0;) {
    const auto& p = params_[k];
    if (!p.requires_grad()) continue;
    const int64_t b = p.numel() * p.element_size();
    const bool fresh = buckets_.empty() || (size > 0 && size + b > bucket_bytes) ||
                       params_[buckets_.back().params.front()].scalar_type() != p.scalar_type();
    if (fresh) {
      buckets_.emplace_back();
      size = 0;
    }
    auto& bucket = buckets_.back();
    bucket_of_[k] = buckets_.size() - 1;
    offset_[k] = size / p.element_size();
    bucket.params.push_back(k);
    size += b;
    bytes_ += b;
  }
  for (auto& bucket : buckets_) {
    const auto& first = params_[bucket.params.front()];
    int64_t numel = 0;
    for (size_t k : bucket.params) numel += params_[k].numel();
    const auto device = group_->carries_device(first.device()) ? first.device() : at::Device(at::kCPU);
    bucket.flat = at::zeros({numel}, first.options().device(device));
  }
  for (size_t k = 0; k < n; ++k) {
    if (!params_[k].requires_grad()) continue;
    hooks_.push_back(params_[k].register_hook([this, k](const at::Tensor& g) { on_grad(k, g); }));
  }
}

GradientSync::~GradientSync() {
  size_t h = 0;
  for (auto& p : params_) {
    if (p.requires_grad()) p.remove_hook(hooks_[h++]);
  }
}

void GradientSync::arm(const std::string& what) {
  LOCALIST_CHECK(!armed_, "gradient sync: armed twice without finish()");
  armed_ = true;
  what_ = what;
  next_launch_ = 0;
  std::fill(arrived_.begin(), arrived_.end(), 0);
  for (auto& b : buckets_) {
    b.pending = static_cast<int64_t>(b.params.size());
    b.work.reset();
  }
}

void GradientSync::on_grad(size_t i, const at::Tensor& grad) {
  if (!armed_) return;
  const auto& p = params_[i];
  auto& bucket = buckets_[bucket_of_[i]];
  auto slot = bucket.flat.narrow(0, offset_[i], p.numel());
  // The hook sees this micro-batch's gradient before it is added to .grad.
  if (p.grad().defined()) {
    slot.copy_((p.grad() + grad).reshape({-1}));
  } else {
    slot.copy_(grad.reshape({-1}));
  }
  if (!arrived_[i]) {
    arrived_[i] = 1;
    --bucket.pending;
  }
  launch_ready();
  // MPI moves a non-blocking collective forward only inside MPI calls.
  for (size_t b = 0; b < next_launch_; ++b) buckets_[b].work->test();
}

void GradientSync::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) launch(next_launch_++);
}

void GradientSync::launch(size_t b) {
  buckets_[b].work =
      group_->all_reduce_async(buckets_[b].flat, ReduceOp::kSum,
                               what_ + ", bucket " + std::to_string(b + 1) + " of " + std::to_string(buckets_.size()));
}

double GradientSync::finish() {
  LOCALIST_CHECK(armed_, "gradient sync: finish() without arm()");
  const auto t0 = std::chrono::steady_clock::now();
  started_in_backward_ = static_cast<int64_t>(next_launch_);
  // Parameters that got no gradient in the last micro-batch: their .grad so far, or zeros.
  for (size_t b = next_launch_; b < buckets_.size(); ++b) {
    for (size_t k : buckets_[b].params) {
      if (arrived_[k]) continue;
      auto slot = buckets_[b].flat.narrow(0, offset_[k], params_[k].numel());
      if (params_[k].grad().defined()) {
        slot.copy_(params_[k].grad().reshape({-1}));
      } else {
        slot.zero_();
      }
    }
    launch(b);
  }
  next_launch_ = buckets_.size();
  for (auto& b : buckets_) b.work->wait();
  for (size_t k = 0; k < params_.size(); ++k) {
    auto& p = params_[k];
    if (!p.requires_grad() || !p.grad().defined()) continue;
    p.mutable_grad().copy_(buckets_[bucket_of_[k]].flat.narrow(0, offset_[k], p.numel()).view_as(p));
  }
  armed_ = false;
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace localist
