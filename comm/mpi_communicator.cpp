// SPDX-License-Identifier: Apache-2.0
// mpi_communicator.cpp: see mpi_communicator.h.
#include "comm/mpi_communicator.h"

#include <ATen/ATen.h>
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "core/deadline_guard.h"
#include "core/stop_signal.h"

namespace localist {
namespace {

MPI_Datatype mpi_type(const at::Tensor& t, const std::string& what) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kLong:
      return MPI_INT64_T;
    case at::kInt:
      return MPI_INT32_T;
    case at::kByte:
      return MPI_UINT8_T;
    default:
      throw Error(what + ": the MPI backend does not carry " + std::string(at::toString(t.scalar_type())) +
                  " tensors (use float32/64 or integers)");
  }
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::kMax ? MPI_MAX : MPI_SUM; }

std::string mpi_error_text(int rc) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int n = 0;
  if (MPI_Error_string(rc, text, &n) != MPI_SUCCESS) return "MPI error " + std::to_string(rc);
  return std::string(text, n);
}

// NOTE(checked calls): the world's error handler is MPI_ERRORS_RETURN (set in mpi_world,
// inherited by every split), so a failing call returns here instead of aborting the job
// without a word; the error names the MPI function and what it was doing.
void mpi_check(int rc, const char* call, const std::string& what) {
  if (rc == MPI_SUCCESS) return;
  throw Error(std::string(call) + " failed" + (what.empty() ? "" : " in " + what) + ": " + mpi_error_text(rc) +
              " (a peer may have died, or the MPI installation is broken)");
}

void check_cpu_contiguous(const at::Tensor& t, const std::string& what) {
  if (!t.device().is_cpu()) throw Error(what + ": the MPI backend needs CPU tensors (NCCL carries CUDA tensors)");
  if (!t.is_contiguous()) throw Error(what + ": tensor must be contiguous");
}

bool g_we_initialised = false;

// NOTE(termination report): when a peer dies, mpirun (or srun) sends SIGTERM to the
// survivors; when Slurm preempts, every rank gets it. Either way the stop handler
// (core/stop_signal.h) says where this rank was: each long wait records its operation
// here, and the reporter writes it with write(2) (async-signal-safe). A survivor of a
// dead peer then ends at its collective's timeout, like any other hang.
char g_last_op[512] = "no collective yet";
std::atomic<int> g_in_wait{0};

void record_op(const std::string& text, bool waiting) {
  if (waiting) {
    const size_t n = std::min(text.size(), sizeof(g_last_op) - 1);
    std::memcpy(g_last_op, text.data(), n);
    g_last_op[n] = '\0';
  }
  g_in_wait.store(waiting ? 1 : 0);
}

void report_operation() {
  stop_signal_write(g_in_wait.load() ? " while waiting in " : " while computing, after ");
  stop_signal_write(g_last_op);
}

MPI_Comm g_monitor = MPI_COMM_NULL;  // a private duplicate of the world for the timeout check-in
constexpr int kCheckInTag = 7331;

// NOTE(watchdog): on a timeout every rank that timed out checks in with world rank 0
// over a private communicator; rank 0 waits a short window and names the ranks it did
// not hear from (stalled or dead), then the job is aborted. Ranks other than 0 wait
// out the window (plus a margin) so that rank 0's verdict is printed before the abort.
std::string watchdog_report(double timeout_s) {
  if (g_monitor == MPI_COMM_NULL) return "";
  int rank = 0, size = 1;
  if (MPI_Comm_rank(g_monitor, &rank) != MPI_SUCCESS || MPI_Comm_size(g_monitor, &size) != MPI_SUCCESS) {
    return "; the watchdog could not query its communicator";
  }
  if (size == 1) return "";
  // Rank 0 listens for `window`; the others wait `window + margin` so that rank 0's
  // verdict and abort come first; both scale with the timeout (~2x it in all).
  const double window = std::min(10.0, std::max(0.2, timeout_s / 2));
  const double margin = std::min(5.0, std::max(0.5, timeout_s / 2));
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  if (rank != 0) {
    int me = rank;
    MPI_Request req;
    int rc = MPI_Isend(&me, 1, MPI_INT, 0, kCheckInTag, g_monitor, &req);
    if (rc != MPI_SUCCESS) return "; the watchdog check-in could not be sent (MPI_Isend: " + mpi_error_text(rc) + ")";
    int done = 0;
    while (!done && elapsed() < window + margin) {
      rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS) return "; the watchdog check-in failed (MPI_Test: " + mpi_error_text(rc) + ")";
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    while (elapsed() < window + margin) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!done) MPI_Cancel(&req);  // best effort: the job is ending
    return "; rank 0 did not answer the watchdog check-in (it may be the one that stopped)";
  }
  std::vector<int> got(size, -1);
  std::vector<MPI_Request> reqs(size, MPI_REQUEST_NULL);
  for (int r = 1; r < size; ++r) {
    const int rc = MPI_Irecv(&got[r], 1, MPI_INT, r, kCheckInTag, g_monitor, &reqs[r]);
    if (rc != MPI_SUCCESS) return "; the watchdog could not listen (MPI_Irecv: " + mpi_error_text(rc) + ")";
  }
  while (elapsed() < window) {
    int all = 0;
    // A failed test (a dead peer's request) ends the listening: the ranks heard so far are named.
    if (MPI_Testall(size - 1, reqs.data() + 1, &all, MPI_STATUSES_IGNORE) != MPI_SUCCESS || all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::string missing;
  for (int r = 1; r < size; ++r) {
    int flag = 0;
    if (reqs[r] != MPI_REQUEST_NULL) MPI_Test(&reqs[r], &flag, MPI_STATUS_IGNORE);
    if (got[r] < 0) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
  }
  return missing.empty() ? "; every rank reached the watchdog, so ranks are waiting in different operations"
                         : "; world rank(s) " + missing + " did not arrive (stalled or dead)";
}

class MpiCommunicator;

class MpiWork : public CommWork {
 public:
  MpiWork(MpiCommunicator* comm, at::Tensor t, bool average, std::string op, std::string what)
      : comm_(comm), t_(std::move(t)), average_(average), op_(std::move(op)), what_(std::move(what)) {}
  bool test() override;
  void wait() override;
  MPI_Request req_ = MPI_REQUEST_NULL;

 private:
  void complete();
  MpiCommunicator* comm_;
  at::Tensor t_;
  bool average_;
  bool done_ = false;
  std::string op_, what_;
};

class MpiCommunicator : public Communicator {
 public:
  // `owned`: this object created the communicator (a split) and frees it.
  MpiCommunicator(MPI_Comm comm, std::string name, double timeout_s, bool owned)
      : comm_(comm), name_(std::move(name)), owned_(owned) {
    mpi_check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank", "group '" + name_ + "'");
    mpi_check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size", "group '" + name_ + "'");
    timeout_s_ = timeout_s;
  }
  ~MpiCommunicator() override {
    int finalised = 0;
    MPI_Finalized(&finalised);
    // After MPI_Finalize nothing may be freed (and nothing needs to be).
    if (owned_ && !finalised && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }

  void all_reduce(at::Tensor& t, ReduceOp op, const std::string& what) override {
    check_cpu_contiguous(t, what);
    MPI_Request req;
    post(MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t, what), mpi_op(op), comm_,
                        &req),
         "MPI_Iallreduce", "all_reduce", what);
    wait(req, "all_reduce", what);
    if (op == ReduceOp::kAvg) t.div_(size_);
  }

  std::shared_ptr<CommWork> all_reduce_async(at::Tensor& t, ReduceOp op, const std::string& what) override {
    check_cpu_contiguous(t, what);
    auto work = std::make_shared<MpiWork>(this, t, op == ReduceOp::kAvg, "all_reduce", what);
    post(MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t, what), mpi_op(op), comm_,
                        &work->req_),
         "MPI_Iallreduce", "all_reduce", what);
    return work;
  }

  void broadcast(at::Tensor& t, int root, const std::string& what) override {
    check_cpu_contiguous(t, what);
    check_rank(root, what);
    MPI_Request req;
    post(MPI_Ibcast(t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t, what), root, comm_, &req), "MPI_Ibcast",
         "broadcast", what);
    wait(req, "broadcast", what);
  }

  at::Tensor all_gather(const at::Tensor& t_in, const std::string& what) override {
    const auto t = t_in.contiguous();
    check_cpu_contiguous(t, what);
    std::vector<int64_t> shape{size_};
    shape.insert(shape.end(), t.sizes().begin(), t.sizes().end());
    auto out = at::empty(shape, t.options());
    MPI_Request req;
    const auto type = mpi_type(t, what);
    post(MPI_Iallgather(t.data_ptr(), static_cast<int>(t.numel()), type, out.data_ptr(), static_cast<int>(t.numel()),
                        type, comm_, &req),
         "MPI_Iallgather", "all_gather", what);
    wait(req, "all_gather", what);
    return out;
  }

  at::Tensor reduce_scatter(const at::Tensor& t_in, ReduceOp op, const std::string& what) override {
    const auto t = t_in.contiguous();
    check_cpu_contiguous(t, what);
    if (t.dim() == 0 || t.size(0) % size_ != 0) {
      throw Error(what + ": reduce_scatter needs a first dimension divisible by the group size " +
                  std::to_string(size_));
    }
    std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
    shape[0] /= size_;
    // A ring on point-to-point messages: n - 1 steps, each passing one accumulated chunk
    // to the right neighbour, so every rank sends (n - 1)/n of the data — the minimum.
    // (OpenMPI's MPI_Ireduce_scatter_block on 2 ranks sends one rank's whole input.)
    auto acc = t.clone().view({size_, -1});
    const int64_t n = acc.size(1);
    const auto type = mpi_type(t, what);
    const int right = (rank_ + 1) % size_, left = (rank_ + size_ - 1) % size_;
    auto incoming = at::empty({n}, t.options());
    for (int s = 0; s + 1 < size_; ++s) {
      const int send_chunk = ((rank_ - s - 1) % size_ + size_) % size_;
      const int recv_chunk = ((rank_ - s - 2) % size_ + size_) % size_;
      at::Tensor out_chunk = acc[send_chunk];
      MPI_Request reqs[2];
      post(MPI_Irecv(incoming.data_ptr(), static_cast<int>(n), type, left, kRingTag, comm_, &reqs[0]), "MPI_Irecv",
           "reduce_scatter", what);
      post(MPI_Isend(out_chunk.data_ptr(), static_cast<int>(n), type, right, kRingTag, comm_, &reqs[1]), "MPI_Isend",
           "reduce_scatter", what);
      wait(reqs[0], "reduce_scatter", what);
      wait(reqs[1], "reduce_scatter", what);
      at::Tensor into = acc[recv_chunk];
      if (op == ReduceOp::kMax) {
        into.copy_(at::maximum(into, incoming));
      } else {
        into.add_(incoming);
      }
    }
    auto out = acc[rank_].clone().view(shape);
    if (op == ReduceOp::kAvg) out.div_(size_);
    return out;
  }

  void send(const at::Tensor& t, int dst, int tag, const std::string& what) override {
    check_cpu_contiguous(t, what);
    check_rank(dst, what);
    MPI_Request req;
    post(MPI_Isend(t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t, what), dst, tag, comm_, &req), "MPI_Isend",
         "send to rank " + std::to_string(dst), what);
    wait(req, "send to rank " + std::to_string(dst), what, true);
  }

  void recv(at::Tensor& t, int src, int tag, const std::string& what) override {
    check_cpu_contiguous(t, what);
    check_rank(src, what);
    MPI_Request req;
    post(MPI_Irecv(t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t, what), src, tag, comm_, &req), "MPI_Irecv",
         "recv from rank " + std::to_string(src), what);
    wait(req, "recv from rank " + std::to_string(src), what, true);
  }

  void barrier(const std::string& what) override {
    MPI_Request req;
    post(MPI_Ibarrier(comm_, &req), "MPI_Ibarrier", "barrier", what);
    wait(req, "barrier", what);
  }

  std::shared_ptr<Communicator> split(int color, int key, const std::string& name) override {
    // MPI_Comm_split blocks without a bound: an all-gather of (color, key) under this
    // group's timeout first makes sure every rank has arrived (a missing one becomes a
    // CommTimeout naming the split), so the split itself only runs once all are there.
    // A rank stopped between the two would still hang the others: the split has a deadline.
    all_gather(at::tensor(std::vector<int64_t>{color, key}, at::kLong), "split into '" + name + "'");
    MPI_Comm sub = MPI_COMM_NULL;
    DeadlineGuard bound("MPI_Comm_split of '" + name_ + "' into '" + name + "'", timeout_s_);
    mpi_check(MPI_Comm_split(comm_, color, key, &sub), "MPI_Comm_split",
              "split of '" + name_ + "' into '" + name + "'");
    return std::make_shared<MpiCommunicator>(sub, name, timeout_s_, /*owned=*/true);
  }

  [[noreturn]] void abort(int status) override {
    MPI_Abort(MPI_COMM_WORLD, status);
    std::_Exit(status);
  }

 private:
  friend class MpiWork;
  void check_rank(int r, const std::string& what) const {
    if (r < 0 || r >= size_) {
      throw Error(what + ": rank " + std::to_string(r) + " is outside group '" + name_ + "' of " +
                  std::to_string(size_));
    }
  }

  // The return code of a non-blocking call that starts `op`.
  void post(int rc, const char* call, const std::string& op, const std::string& what) const {
    mpi_check(rc, call, op + " '" + what + "' in group '" + name_ + "' (rank " + std::to_string(rank_) + ")");
  }

  // Polls until done or the timeout; spins briefly, then sleeps so idle ranks yield the core.
  void wait(MPI_Request& req, const std::string& op, const std::string& what, bool point_to_point = false) {
    const auto start = std::chrono::steady_clock::now();
    int done = 0;
    bool recorded = false;
    for (int spins = 0;; ++spins) {
      post(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test", op, what);
      if (done) {
        if (recorded) record_op("", false);
        return;
      }
      if (!recorded && spins > 100) {  // only waits that last are worth the string
        record_op(op + " '" + what + "' in group '" + name_ + "' (rank " + std::to_string(rank_) + " of " +
                      std::to_string(size_) + ")",
                  true);
        recorded = true;
      }
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (waited > timeout_s_) {
        // A point-to-point request can be withdrawn; a collective cannot (the job must end).
        // These calls are best effort: the timeout below is the error that is reported.
        if (point_to_point) {
          MPI_Cancel(&req);
          MPI_Request_free(&req);
        }
        int world_rank = 0;
        MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
        const std::string verdict = watchdog_report(timeout_s_);
        throw CommTimeout(op + " '" + what + "' in group '" + name_ + "' (rank " + std::to_string(rank_) + " of " +
                          std::to_string(size_) + ", world rank " + std::to_string(world_rank) + ") timed out after " +
                          std::to_string(static_cast<int>(timeout_s_)) + " s" + verdict);
      }
      // Long waits sleep 100 us between polls: an idle rank yields its core, and a peer that
      // arrives finds it awake within 0.1 ms (1 ms sleeps cost every boundary ~1 ms).
      if (spins > 2000) std::this_thread::sleep_for(std::chrono::microseconds(spins > 20000 ? 100 : 50));
    }
  }

  // Point-to-point tag of the ring collectives (reduce_scatter); callers' own messages
  // use small tags, and MPI keeps messages of one (source, tag) in order.
  static constexpr int kRingTag = 32001;
  MPI_Comm comm_;
  std::string name_;
  bool owned_ = false;
  int rank_ = 0, size_ = 1;
};

bool MpiWork::test() {
  if (done_) return true;
  int flag = 0;
  mpi_check(MPI_Test(&req_, &flag, MPI_STATUS_IGNORE), "MPI_Test", op_ + " '" + what_ + "'");
  if (flag) complete();
  return done_;
}

void MpiWork::wait() {
  if (done_) return;
  comm_->wait(req_, op_, what_);
  complete();
}

void MpiWork::complete() {
  done_ = true;
  if (average_) t_.div_(comm_->size());
}

}  // namespace

MpiWorld mpi_world(const LaunchEnv& env, double timeout_s) {
  launch_env_require_mpi(env);
  int initialised = 0;
  mpi_check(MPI_Initialized(&initialised), "MPI_Initialized", "start-up");
  // MPI_Init and the first collective wait without a bound for every rank of the job: a
  // rank that is stopped or never starts would hang the others (found by the chaos soak).
  DeadlineGuard startup("MPI start-up (MPI_Init_thread and the first collective)", timeout_s);
  if (!initialised) {
    int provided = 0;
    mpi_check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread", "start-up");
    g_we_initialised = true;
  }
  mpi_check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", "start-up");
  MpiWorld w;
  if (g_monitor == MPI_COMM_NULL) {
    mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &g_monitor), "MPI_Comm_dup", "the watchdog's communicator");
    stop_signal_install();
    stop_signal_set_reporter(report_operation);
  }
  w.world = std::make_shared<MpiCommunicator>(MPI_COMM_WORLD, "world", timeout_s, /*owned=*/false);
  if (env.launcher != "none" && (w.world->size() != env.world_size || w.world->rank() != env.rank)) {
    throw Error("MPI sees rank " + std::to_string(w.world->rank()) + " of " + std::to_string(w.world->size()) +
                " but the launcher (" + env.launcher + ") started rank " + std::to_string(env.rank) + " of " +
                std::to_string(env.world_size) + "; with Slurm use `srun --mpi=pmix` (Debian's OpenMPI needs PMIx)");
  }
  MPI_Comm node;
  mpi_check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w.world->rank(), MPI_INFO_NULL, &node),
            "MPI_Comm_split_type", "finding the ranks of this node");
  mpi_check(MPI_Comm_rank(node, &w.local_rank), "MPI_Comm_rank", "the node's communicator");
  mpi_check(MPI_Comm_size(node, &w.local_size), "MPI_Comm_size", "the node's communicator");
  const ProcessId self = this_process();
  const unsigned long long mine[2] = {static_cast<unsigned long long>(self.pid), self.start_ticks};
  std::vector<unsigned long long> all(2 * static_cast<size_t>(w.local_size));
  mpi_check(MPI_Allgather(mine, 2, MPI_UNSIGNED_LONG_LONG, all.data(), 2, MPI_UNSIGNED_LONG_LONG, node),
            "MPI_Allgather", "the process ids of this node's ranks");
  for (int i = 0; i < w.local_size; ++i) {
    if (i == w.local_rank) continue;
    w.node_peers.push_back({static_cast<int>(all[2 * static_cast<size_t>(i)]), all[2 * static_cast<size_t>(i) + 1]});
  }
  mpi_check(MPI_Comm_free(&node), "MPI_Comm_free", "the node's communicator");
  return w;
}

void mpi_finalize(double timeout_s) {
  // MPI_Finalize waits for every rank: bounded, so a peer stopped after the last
  // collective cannot hang this one (the launcher then ends the job).
  DeadlineGuard guard("MPI_Finalize", timeout_s);
  int finalised = 0;
  MPI_Finalized(&finalised);
  // At the end nothing is left to report to: failures here are ignored, not thrown.
  if (!finalised && g_monitor != MPI_COMM_NULL) MPI_Comm_free(&g_monitor);
  if (g_we_initialised && !finalised) MPI_Finalize();
}

}  // namespace localist
