// SPDX-License-Identifier: Apache-2.0
// nccl_communicator.cpp: see nccl_communicator.h.
#include "comm/nccl_communicator.h"

#include <ATen/ATen.h>
#include <c10/core/Event.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "comm/nccl_library.h"

namespace localist {
namespace {

using Clock = std::chrono::steady_clock;

int nccl_type(const at::Tensor& t, const std::string& what) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    case at::kHalf:
      return ncclFloat16;
    case at::kBFloat16:
      return ncclBfloat16;
    case at::kLong:
      return ncclInt64;
    case at::kInt:
      return ncclInt32;
    case at::kByte:
      return ncclUint8;
    case at::kChar:
      return ncclInt8;
    default:
      throw Error(what + ": the NCCL backend does not carry " + std::string(at::toString(t.scalar_type())) +
                  " tensors");
  }
}

int nccl_op(ReduceOp op) { return op == ReduceOp::kMax ? ncclMax : op == ReduceOp::kAvg ? ncclAvg : ncclSum; }

class NcclCommunicator;

class NcclWork : public CommWork {
 public:
  NcclWork(NcclCommunicator* c, c10::Event done, std::string op, std::string what)
      : comm_(c), done_(std::move(done)), op_(std::move(op)), what_(std::move(what)) {}
  bool test() override;
  void wait() override;

 private:
  NcclCommunicator* comm_;
  c10::Event done_;
  std::string op_, what_;
  bool finished_ = false;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<Communicator> control, const at::Device& device, const NcclLibrary& lib)
      : control_(std::move(control)), device_(device), lib_(lib), name_(control_->name() + " (nccl)") {
    timeout_s_ = control_->timeout_s();
    // The unique id goes from rank 0 to the others on the control plane.
    auto id = at::zeros({static_cast<int64_t>(sizeof(ncclUniqueId))}, at::kByte);
    ncclUniqueId uid{};
    if (control_->rank() == 0) check(lib_.GetUniqueId(&uid), "ncclGetUniqueId", "bootstrap");
    std::memcpy(id.data_ptr(), &uid, sizeof uid);
    control_->broadcast(id, 0, "NCCL unique id of group '" + control_->name() + "'");
    std::memcpy(&uid, id.data_ptr(), sizeof uid);
    guard()->setDevice(device_);
    check(lib_.CommInitRank(&comm_, control_->size(), uid, control_->rank()), "ncclCommInitRank",
          "start-up on " + device_.str() + " (two ranks on one GPU are refused: one rank per GPU)");
  }
  ~NcclCommunicator() override {
    if (comm_) lib_.CommDestroy(comm_);
  }
  int rank() const override { return control_->rank(); }
  int size() const override { return control_->size(); }
  const std::string& name() const override { return name_; }
  bool carries_device(const at::Device& d) const override { return d.is_cuda(); }

  void all_reduce(at::Tensor& t, ReduceOp op, const std::string& what) override {
    all_reduce_async(t, op, what)->wait();
  }
  std::shared_ptr<CommWork> all_reduce_async(at::Tensor& t, ReduceOp op, const std::string& what) override {
    check_tensor(t, what);
    return enqueue("all_reduce", what, [&](cudaStream_t s) {
      return lib_.AllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t, what), nccl_op(op), comm_, s);
    });
  }
  void broadcast(at::Tensor& t, int root, const std::string& what) override {
    check_tensor(t, what);
    enqueue("broadcast", what, [&](cudaStream_t s) {
      return lib_.Broadcast(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t, what), root, comm_, s);
    })->wait();
  }
  at::Tensor all_gather(const at::Tensor& t_in, const std::string& what) override {
    const auto t = t_in.contiguous();
    check_tensor(t, what);
    std::vector<int64_t> shape{size()};
    shape.insert(shape.end(), t.sizes().begin(), t.sizes().end());
    auto out = at::empty(shape, t.options());
    enqueue("all_gather", what, [&](cudaStream_t s) {
      return lib_.AllGather(t.data_ptr(), out.data_ptr(), t.numel(), nccl_type(t, what), comm_, s);
    })->wait();
    return out;
  }
  at::Tensor reduce_scatter(const at::Tensor& t_in, ReduceOp op, const std::string& what) override {
    const auto t = t_in.contiguous();
    check_tensor(t, what);
    if (t.dim() == 0 || t.size(0) % size() != 0) {
      throw Error(what + ": reduce_scatter needs a first dimension divisible by the group size " +
                  std::to_string(size()));
    }
    std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
    shape[0] /= size();
    auto out = at::empty(shape, t.options());
    enqueue("reduce_scatter", what, [&](cudaStream_t s) {
      return lib_.ReduceScatter(t.data_ptr(), out.data_ptr(), out.numel(), nccl_type(t, what), nccl_op(op), comm_, s);
    })->wait();
    return out;
  }
  // Point to point as NCCL groups it: one send or receive inside ncclGroupStart/End.
  void send(const at::Tensor& t, int dst, int, const std::string& what) override {
    check_tensor(t, what);
    enqueue("send to rank " + std::to_string(dst), what, [&](cudaStream_t s) {
      check(lib_.GroupStart(), "ncclGroupStart", what);
      const int rc = lib_.Send(t.data_ptr(), t.numel(), nccl_type(t, what), dst, comm_, s);
      const int end = lib_.GroupEnd();
      return rc != ncclSuccess ? rc : end;
    })->wait();
  }
  void recv(at::Tensor& t, int src, int, const std::string& what) override {
    check_tensor(t, what);
    enqueue("recv from rank " + std::to_string(src), what, [&](cudaStream_t s) {
      check(lib_.GroupStart(), "ncclGroupStart", what);
      const int rc = lib_.Recv(t.data_ptr(), t.numel(), nccl_type(t, what), src, comm_, s);
      const int end = lib_.GroupEnd();
      return rc != ncclSuccess ? rc : end;
    })->wait();
  }
  void barrier(const std::string& what) override {
    auto one = at::ones({1}, at::dtype(at::kFloat).device(device_));
    all_reduce(one, ReduceOp::kSum, what);
  }
  std::shared_ptr<Communicator> split(int color, int key, const std::string& name) override {
    return std::make_shared<NcclCommunicator>(control_->split(color, key, name), device_, lib_);
  }
  [[noreturn]] void abort(int status) override {
    if (comm_) lib_.CommAbort(comm_);
    comm_ = nullptr;
    control_->abort(status);
    std::_Exit(status);  // not reached: the control plane's abort ends the job
  }

  // Polls the event and NCCL's asynchronous error against the timeout.
  void wait_done(const c10::Event& done, const std::string& op, const std::string& what) {
    const auto start = Clock::now();
    for (int spins = 0;; ++spins) {
      if (poll(done, op, what)) return;
      if (std::chrono::duration<double>(Clock::now() - start).count() > timeout_s_) {
        abort_comm();
        throw CommTimeout(op + " '" + what + "' in group '" + name_ + "' (rank " + std::to_string(rank()) + " of " +
                          std::to_string(size()) + ") timed out after " + std::to_string(static_cast<int>(timeout_s_)) +
                          " s; the NCCL communicator was aborted (a peer stalled, died, or called another operation)");
      }
      if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  bool poll(const c10::Event& done, const std::string& op, const std::string& what) {
    int async = ncclSuccess;
    check(lib_.CommGetAsyncError(comm_, &async), "ncclCommGetAsyncError", op + " '" + what + "'");
    if (async != ncclSuccess && async != ncclInProgress) {
      const std::string text = lib_.GetErrorString(async);
      abort_comm();
      throw Error(op + " '" + what + "' in group '" + name_ + "' failed: NCCL reports " + text +
                  "; the communicator was aborted");
    }
    return done.query();
  }

 private:
  const c10::impl::DeviceGuardImplInterface* guard() const { return c10::impl::getDeviceGuardImpl(at::kCUDA); }
  void check_tensor(const at::Tensor& t, const std::string& what) const {
    if (!t.is_cuda()) throw Error(what + ": the NCCL backend carries CUDA tensors (the MPI backend carries CPU ones)");
    if (!t.is_contiguous()) throw Error(what + ": tensor must be contiguous");
    if (!comm_) throw Error(what + ": the NCCL communicator of group '" + name_ + "' was aborted");
  }
  void check(int rc, const char* call, const std::string& what) {
    if (rc == ncclSuccess || rc == ncclInProgress) return;
    throw Error(std::string(call) + " failed in " + what + " (group '" + name_ + "', rank " + std::to_string(rank()) +
                "): " + lib_.GetErrorString(rc));
  }
  void abort_comm() {
    // NOTE(abort): ncclCommAbort can itself hang (NVIDIA/nccl#829); the MPI control
    // plane's abort remains the last resort of the caller.
    if (comm_) lib_.CommAbort(comm_);
    comm_ = nullptr;
  }
  // Runs `call` on the device's default stream after the current stream's work, and
  // returns the work whose event marks its end (the current stream waits for it too).
  template <class Call>
  std::shared_ptr<NcclWork> enqueue(const std::string& op, const std::string& what, Call call) {
    const c10::Stream current = guard()->getStream(device_);
    const c10::Stream nccl_stream = guard()->getDefaultStream(device_);
    c10::Event ready(at::kCUDA);
    ready.record(current);
    ready.block(nccl_stream);
    // NOTE(stream): the default stream's handle is the null stream (id 0), the one handle
    // that needs no CUDA headers to name.
    check(call(static_cast<cudaStream_t>(nullptr)), op.c_str(), "'" + what + "'");
    c10::Event done(at::kCUDA);
    done.record(nccl_stream);
    done.block(current);
    return std::make_shared<NcclWork>(this, std::move(done), op, what);
  }

  std::shared_ptr<Communicator> control_;
  at::Device device_;
  const NcclLibrary& lib_;
  std::string name_;
  ncclComm_t comm_ = nullptr;
};

bool NcclWork::test() {
  if (!finished_) finished_ = comm_->poll(done_, op_, what_);
  return finished_;
}

void NcclWork::wait() {
  if (finished_) return;
  comm_->wait_done(done_, op_, what_);
  finished_ = true;
}

}  // namespace

std::shared_ptr<Communicator> nccl_communicator_make(std::shared_ptr<Communicator> control, const at::Device& device) {
  const NcclLoad& load = nccl_library();
  if (!load.library) throw Error("train.device cuda with " + std::to_string(control->size()) + " ranks: " + load.error);
  return std::make_shared<NcclCommunicator>(std::move(control), device, *load.library);
}

std::shared_ptr<Communicator> data_plane_for(std::shared_ptr<Communicator> control, const at::Device& device) {
  if (!device.is_cuda() || control->size() == 1) return control;
  return nccl_communicator_make(std::move(control), device);
}

}  // namespace localist
