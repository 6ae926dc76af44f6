// SPDX-License-Identifier: Apache-2.0
// local_communicator.cpp: the single-rank Communicator (one process, or tests).
#include <ATen/ATen.h>

#include <cstdlib>

#include "comm/communicator.h"

namespace localist {
namespace {

class DoneWork : public CommWork {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class LocalCommunicator : public Communicator {
 public:
  explicit LocalCommunicator(std::string name) : name_(std::move(name)) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const std::string& name() const override { return name_; }
  void all_reduce(at::Tensor&, ReduceOp, const std::string&) override {}
  std::shared_ptr<CommWork> all_reduce_async(at::Tensor&, ReduceOp, const std::string&) override {
    return std::make_shared<DoneWork>();
  }
  bool carries_device(const at::Device&) const override { return true; }
  void broadcast(at::Tensor&, int root, const std::string& what) override { check_peer(root, what); }
  at::Tensor all_gather(const at::Tensor& t, const std::string&) override { return t.unsqueeze(0).clone(); }
  at::Tensor reduce_scatter(const at::Tensor& t, ReduceOp, const std::string&) override { return t.clone(); }
  void send(const at::Tensor&, int dst, int, const std::string& what) override { no_peer(dst, what); }
  void recv(at::Tensor&, int src, int, const std::string& what) override { no_peer(src, what); }
  void barrier(const std::string&) override {}
  std::shared_ptr<Communicator> split(int, int, const std::string& name) override {
    return std::make_shared<LocalCommunicator>(name);
  }
  [[noreturn]] void abort(int status) override { std::_Exit(status); }

 private:
  void check_peer(int peer, const std::string& what) const {
    if (peer != 0) throw Error(what + ": rank " + std::to_string(peer) + " does not exist in a group of one");
  }
  [[noreturn]] void no_peer(int peer, const std::string& what) const {
    throw Error(what + ": no rank " + std::to_string(peer) + " to exchange with in a group of one");
  }
  std::string name_;
};

}  // namespace

std::shared_ptr<Communicator> local_communicator() { return std::make_shared<LocalCommunicator>("world"); }

}  // namespace localist
