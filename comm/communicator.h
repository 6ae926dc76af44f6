// SPDX-License-Identifier: Apache-2.0
// communicator.h: the one interface through which code above comm/ talks to other
// ranks (DESIGN.md §2): collectives and point-to-point on tensors, each bounded by a
// timeout, and sub-groups. Backends: the MPI backend (CPU tensors and the control
// plane; comm/mpi_communicator.h), the NCCL backend (CUDA tensors;
// comm/nccl_communicator.h), the single-rank double local_communicator() and the N-rank
// in-process double with fault injection (comm/in_process_group.h, for tests).
// A timeout raises CommTimeout naming the operation, the group and this rank.
// Limits: a backend carries only the devices carries_device() names; the MPI backend
// moves a CUDA tensor through host memory. The NCCL backend has not yet run on a GPU.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

#include "core/error.h"

namespace localist {

enum class ReduceOp { kSum, kAvg, kMax };

class CommTimeout : public Error {
 public:
  explicit CommTimeout(const std::string& message) : Error(message, kExitFailure) {}
};

// A non-blocking operation in flight. test() also drives its progress (MPI progresses
// only inside MPI calls); wait() is bounded by the group's timeout like any blocking call.
class CommWork {
 public:
  virtual ~CommWork() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const std::string& name() const = 0;  // "world", or the name given to split()
  double timeout_s() const { return timeout_s_; }
  virtual void set_timeout(double seconds) { timeout_s_ = seconds; }

  // In place on a contiguous tensor; kAvg divides the sum by size().
  virtual void all_reduce(at::Tensor& t, ReduceOp op, const std::string& what) = 0;
  // The same, non-blocking: `t` must stay alive and untouched until the work is done.
  virtual std::shared_ptr<CommWork> all_reduce_async(at::Tensor& t, ReduceOp op, const std::string& what) = 0;
  // Whether tensors on `device` can be passed directly (else stage them in host memory).
  virtual bool carries_device(const at::Device& device) const { return device.is_cpu(); }
  virtual void broadcast(at::Tensor& t, int root, const std::string& what) = 0;
  // Every rank's `t` (same shape everywhere) stacked along a new leading dimension.
  virtual at::Tensor all_gather(const at::Tensor& t, const std::string& what) = 0;
  // Reduces `t` (dim 0 divisible by size()) and returns this rank's block of dim 0.
  virtual at::Tensor reduce_scatter(const at::Tensor& t, ReduceOp op, const std::string& what) = 0;
  virtual void send(const at::Tensor& t, int dst, int tag, const std::string& what) = 0;
  virtual void recv(at::Tensor& t, int src, int tag, const std::string& what) = 0;
  virtual void barrier(const std::string& what) = 0;
  // Ranks with the same color form a group, ordered by key then rank. Collective, and
  // bounded by this group's timeout like every other call; the new group inherits it.
  virtual std::shared_ptr<Communicator> split(int color, int key, const std::string& name) = 0;
  // Ends the whole job at once (all ranks, all groups) with `status`; never returns.
  [[noreturn]] virtual void abort(int status) = 0;

 protected:
  double timeout_s_ = 300.0;
};

// The single-rank double: collectives are the identity; point-to-point is an error.
std::shared_ptr<Communicator> local_communicator();

}  // namespace localist
