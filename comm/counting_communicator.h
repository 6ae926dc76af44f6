// SPDX-License-Identifier: Apache-2.0
// counting_communicator.h: a Communicator that passes every call to another and counts
// the bytes of the tensors this rank hands to collectives and sends, per group name (a
// group split from it is counted too) — what `localist plan`'s per-step payloads are
// held to. Enabled by LOCALIST_COUNT_COMM_BYTES=1 (run/train_run.cpp).
// Limits: counts payloads (what the caller passes), not the bytes an algorithm puts on
// the wire; receives are not counted (the sender's side is).
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "comm/communicator.h"

namespace localist {

struct CommByteCounts {
  std::mutex mutex;
  std::map<std::string, int64_t> by_group;  // group name -> bytes handed to it
  std::map<std::string, int64_t> snapshot();
};

class CountingCommunicator : public Communicator {
 public:
  CountingCommunicator(std::shared_ptr<Communicator> inner, std::shared_ptr<CommByteCounts> counts);
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  const std::string& name() const override { return inner_->name(); }
  void set_timeout(double seconds) override;
  void all_reduce(at::Tensor& t, ReduceOp op, const std::string& what) override;
  std::shared_ptr<CommWork> all_reduce_async(at::Tensor& t, ReduceOp op, const std::string& what) override;
  bool carries_device(const at::Device& device) const override { return inner_->carries_device(device); }
  void broadcast(at::Tensor& t, int root, const std::string& what) override;
  at::Tensor all_gather(const at::Tensor& t, const std::string& what) override;
  at::Tensor reduce_scatter(const at::Tensor& t, ReduceOp op, const std::string& what) override;
  void send(const at::Tensor& t, int dst, int tag, const std::string& what) override;
  void recv(at::Tensor& t, int src, int tag, const std::string& what) override;
  void barrier(const std::string& what) override { inner_->barrier(what); }
  std::shared_ptr<Communicator> split(int color, int key, const std::string& name) override;
  [[noreturn]] void abort(int status) override { inner_->abort(status); }
  const std::shared_ptr<CommByteCounts>& counts() const { return counts_; }

 private:
  void count(const at::Tensor& t);
  std::shared_ptr<Communicator> inner_;
  std::shared_ptr<CommByteCounts> counts_;
};

}  // namespace localist
