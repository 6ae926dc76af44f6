// SPDX-License-Identifier: Apache-2.0
// counting_communicator.cpp: see counting_communicator.h.
#include "comm/counting_communicator.h"

#include <ATen/ATen.h>

namespace localist {

std::map<std::string, int64_t> CommByteCounts::snapshot() {
  std::lock_guard<std::mutex> lock(mutex);
  return by_group;
}

CountingCommunicator::CountingCommunicator(std::shared_ptr<Communicator> inner, std::shared_ptr<CommByteCounts> counts)
    : inner_(std::move(inner)), counts_(std::move(counts)) {
  timeout_s_ = inner_->timeout_s();
}

void CountingCommunicator::set_timeout(double seconds) {
  timeout_s_ = seconds;
  inner_->set_timeout(seconds);
}

void CountingCommunicator::count(const at::Tensor& t) {
  std::lock_guard<std::mutex> lock(counts_->mutex);
  counts_->by_group[inner_->name()] += static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}

void CountingCommunicator::all_reduce(at::Tensor& t, ReduceOp op, const std::string& what) {
  count(t);
  inner_->all_reduce(t, op, what);
}

std::shared_ptr<CommWork> CountingCommunicator::all_reduce_async(at::Tensor& t, ReduceOp op, const std::string& what) {
  count(t);
  return inner_->all_reduce_async(t, op, what);
}

void CountingCommunicator::broadcast(at::Tensor& t, int root, const std::string& what) {
  if (rank() == root) count(t);
  inner_->broadcast(t, root, what);
}

at::Tensor CountingCommunicator::all_gather(const at::Tensor& t, const std::string& what) {
  count(t);
  return inner_->all_gather(t, what);
}

at::Tensor CountingCommunicator::reduce_scatter(const at::Tensor& t, ReduceOp op, const std::string& what) {
  count(t);
  return inner_->reduce_scatter(t, op, what);
}

void CountingCommunicator::send(const at::Tensor& t, int dst, int tag, const std::string& what) {
  count(t);
  inner_->send(t, dst, tag, what);
}

void CountingCommunicator::recv(at::Tensor& t, int src, int tag, const std::string& what) {
  inner_->recv(t, src, tag, what);
}

std::shared_ptr<Communicator> CountingCommunicator::split(int color, int key, const std::string& name) {
  return std::make_shared<CountingCommunicator>(inner_->split(color, key, name), counts_);
}

}  // namespace localist
