// SPDX-License-Identifier: Apache-2.0
// in_process_group.cpp: see in_process_group.h.
#include "comm/in_process_group.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

namespace localist {
namespace {

using Clock = std::chrono::steady_clock;

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

// What every rank of a run shares: the faults, the per-rank call counts, the end.
struct RunState {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<CommFault> faults;
  std::vector<int64_t> calls;  // per world rank
  int ended = 0, stalled = 0;
  bool shutdown = false;
};

struct GroupState;

// One collective call, by its index in the group's call order.
struct Slot {
  std::string op, what;
  std::vector<at::Tensor> in;
  std::vector<bool> arrived;
  int count = 0, consumed = 0;
  std::map<int64_t, std::shared_ptr<GroupState>> children;  // split: the new group of each colour
};

struct GroupState {
  std::string name;
  std::vector<int> world_ranks;  // group rank -> world rank
  std::map<int64_t, Slot> slots;
  std::map<std::tuple<int, int, int>, std::vector<at::Tensor>> mail;  // (src, dst, tag) -> sent, in order
};

class InProcessCommunicator;

class InProcessWork : public CommWork {
 public:
  InProcessWork(InProcessCommunicator* c, int64_t index, at::Tensor t, ReduceOp op, std::string what)
      : comm_(c), index_(index), t_(std::move(t)), op_(op), what_(std::move(what)) {}
  bool test() override;
  void wait() override;

 private:
  InProcessCommunicator* comm_;
  int64_t index_;
  at::Tensor t_;
  ReduceOp op_;
  std::string what_;
  bool done_ = false;
};

class InProcessCommunicator : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<RunState> run, std::shared_ptr<GroupState> group, int rank, double timeout_s)
      : run_(std::move(run)), g_(std::move(group)), rank_(rank) {
    timeout_s_ = timeout_s;
  }
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(g_->world_ranks.size()); }
  const std::string& name() const override { return g_->name; }

  void all_reduce(at::Tensor& t, ReduceOp op, const std::string& what) override {
    check(t, what);
    t.copy_(reduce(collect(deposit("all_reduce", what, t), "all_reduce", what), op));
  }
  std::shared_ptr<CommWork> all_reduce_async(at::Tensor& t, ReduceOp op, const std::string& what) override {
    check(t, what);
    return std::make_shared<InProcessWork>(this, deposit("all_reduce", what, t), t, op, what);
  }
  void broadcast(at::Tensor& t, int root, const std::string& what) override {
    check(t, what);
    check_rank(root, what);
    t.copy_(collect(deposit("broadcast", what, t), "broadcast", what)[root]);
  }
  at::Tensor all_gather(const at::Tensor& t, const std::string& what) override {
    check(t, what);
    return at::stack(collect(deposit("all_gather", what, t), "all_gather", what));
  }
  at::Tensor reduce_scatter(const at::Tensor& t, ReduceOp op, const std::string& what) override {
    check(t, what);
    if (t.dim() == 0 || t.size(0) % size() != 0) {
      throw Error(what + ": reduce_scatter needs a first dimension divisible by the group size " +
                  std::to_string(size()));
    }
    const auto sum = reduce(collect(deposit("reduce_scatter", what, t), "reduce_scatter", what), op);
    const int64_t n = t.size(0) / size();
    return sum.narrow(0, rank_ * n, n).clone();
  }
  void send(const at::Tensor& t, int dst, int tag, const std::string& what) override {
    check(t, what);
    check_rank(dst, what);
    enter("send to rank " + std::to_string(dst), what);
    std::lock_guard<std::mutex> lock(run_->mu);
    g_->mail[{rank_, dst, tag}].push_back(t.contiguous().clone());  // buffered: returns at once
    run_->cv.notify_all();
  }
  void recv(at::Tensor& t, int src, int tag, const std::string& what) override {
    check(t, what);
    check_rank(src, what);
    const std::string op = "recv from rank " + std::to_string(src);
    enter(op, what);
    std::unique_lock<std::mutex> lock(run_->mu);
    auto& box = g_->mail[{src, rank_, tag}];
    wait_until(
        lock, [&] { return !box.empty(); }, op, what, [&] { return "rank " + std::to_string(src) + " sent nothing"; });
    const at::Tensor got = box.front();
    box.erase(box.begin());
    if (got.numel() != t.numel()) {
      throw Error(what + ": rank " + std::to_string(src) + " sent " + std::to_string(got.numel()) +
                  " values, this rank expects " + std::to_string(t.numel()));
    }
    t.copy_(got.view_as(t));
  }
  void barrier(const std::string& what) override {
    collect(deposit("barrier", what, at::zeros({1}, at::kLong)), "barrier", what);
  }
  std::shared_ptr<Communicator> split(int color, int key, const std::string& name) override {
    const std::string what = "split into '" + name + "'";
    const int64_t index = deposit("split", what, at::tensor(std::vector<int64_t>{color, key}, at::kLong));
    const auto all = collect(index, "split", what, /*keep=*/true);
    std::vector<std::pair<int64_t, int>> members;  // (key, group rank) of this colour
    for (int r = 0; r < size(); ++r) {
      if (all[r][0].item<int64_t>() == color) members.emplace_back(all[r][1].item<int64_t>(), r);
    }
    std::sort(members.begin(), members.end());
    std::unique_lock<std::mutex> lock(run_->mu);
    Slot& slot = g_->slots.at(index);
    auto& child = slot.children[color];
    if (!child) {
      child = std::make_shared<GroupState>();
      child->name = name;
      for (const auto& m : members) child->world_ranks.push_back(g_->world_ranks[m.second]);
    }
    const auto group = child;
    if (++slot.consumed == size()) g_->slots.erase(index);
    const int me = static_cast<int>(
        std::find_if(members.begin(), members.end(), [&](const auto& m) { return m.second == rank_; }) -
        members.begin());
    return std::make_shared<InProcessCommunicator>(run_, group, me, timeout_s_);
  }
  [[noreturn]] void abort(int status) override {
    throw Error("abort(" + std::to_string(status) + ") called by rank " + std::to_string(rank_) + " of group '" +
                g_->name + "'");
  }

  // Contributions of every rank to collective `index`, when all have arrived (null: not yet).
  bool try_collect(int64_t index, std::vector<at::Tensor>* out) {
    std::lock_guard<std::mutex> lock(run_->mu);
    Slot& slot = g_->slots.at(index);
    if (slot.count < size()) return false;
    *out = slot.in;
    if (++slot.consumed == size()) g_->slots.erase(index);
    return true;
  }
  std::vector<at::Tensor> collect(int64_t index, const std::string& op, const std::string& what, bool keep = false) {
    std::unique_lock<std::mutex> lock(run_->mu);
    Slot& slot = g_->slots.at(index);
    wait_until(
        lock, [&] { return slot.count == size(); }, op, what,
        [&] {
          std::string missing;
          for (int r = 0; r < size(); ++r) {
            if (!slot.arrived[r]) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
          }
          return "rank(s) " + missing + " of the group did not arrive (stalled or dead)";
        });
    std::vector<at::Tensor> out = slot.in;
    if (!keep && ++slot.consumed == size()) g_->slots.erase(index);
    return out;
  }
  at::Tensor reduce(const std::vector<at::Tensor>& in, ReduceOp op) const {
    at::Tensor acc = in[0].clone();  // in rank order: every rank computes the same value
    for (size_t r = 1; r < in.size(); ++r) acc = op == ReduceOp::kMax ? at::maximum(acc, in[r]) : acc + in[r];
    if (op == ReduceOp::kAvg) acc = acc / static_cast<double>(in.size());
    return acc;
  }

 private:
  void check(const at::Tensor& t, const std::string& what) const {
    if (!t.device().is_cpu()) throw Error(what + ": the in-process group carries CPU tensors only");
  }
  void check_rank(int r, const std::string& what) const {
    if (r < 0 || r >= size()) {
      throw Error(what + ": rank " + std::to_string(r) + " is outside group '" + g_->name + "' of " +
                  std::to_string(size()));
    }
  }
  // Counts this rank's call and applies its fault, if this is the faulty call.
  void enter(const std::string& op, const std::string& what) {
    const int world_rank = g_->world_ranks[rank_];
    std::unique_lock<std::mutex> lock(run_->mu);
    const int64_t call = ++run_->calls[world_rank];
    for (const auto& f : run_->faults) {
      if (f.rank != world_rank || f.call != call) continue;
      if (f.kind == CommFault::Kind::kFail) {
        throw Error("injected failure: world rank " + std::to_string(world_rank) + " fails in " + op + " '" + what +
                    "' (its call " + std::to_string(call) + ")");
      }
      ++run_->stalled;
      run_->cv.notify_all();
      run_->cv.wait(lock, [&] { return run_->shutdown; });
      throw Error("injected stall: world rank " + std::to_string(world_rank) + " stalled in " + op + " '" + what + "'");
    }
  }
  int64_t deposit(const std::string& op, const std::string& what, const at::Tensor& t) {
    enter(op, what);
    std::lock_guard<std::mutex> lock(run_->mu);
    const int64_t index = next_++;
    Slot& slot = g_->slots[index];
    if (slot.op.empty()) {
      slot.op = op, slot.what = what;
      slot.in.resize(size());
      slot.arrived.assign(size(), false);
    } else if (slot.op != op) {
      throw Error(op + " '" + what + "' in group '" + g_->name + "' (rank " + std::to_string(rank_) +
                  "): another rank called " + slot.op + " '" + slot.what + "' here (ranks disagree on the call order)");
    }
    slot.in[rank_] = t.contiguous().clone();
    slot.arrived[rank_] = true;
    ++slot.count;
    run_->cv.notify_all();
    return index;
  }
  template <class Ready, class Missing>
  void wait_until(std::unique_lock<std::mutex>& lock, Ready ready, const std::string& op, const std::string& what,
                  Missing missing) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s_);
    while (!ready()) {
      if (run_->shutdown || run_->cv.wait_until(lock, deadline) == std::cv_status::timeout) {
        if (ready()) return;
        throw CommTimeout(op + " '" + what + "' in group '" + g_->name + "' (rank " + std::to_string(rank_) + " of " +
                          std::to_string(size()) + ") timed out after " + seconds_text(timeout_s_) + " s; " +
                          missing());
      }
    }
  }

  std::shared_ptr<RunState> run_;
  std::shared_ptr<GroupState> g_;
  int rank_;
  int64_t next_ = 0;  // index of this rank's next collective in the group
  friend class InProcessWork;
};

bool InProcessWork::test() {
  if (done_) return true;
  std::vector<at::Tensor> in;
  if (!comm_->try_collect(index_, &in)) return false;
  t_.copy_(comm_->reduce(in, op_));
  return done_ = true;
}

void InProcessWork::wait() {
  if (done_) return;
  t_.copy_(comm_->reduce(comm_->collect(index_, "all_reduce", what_), op_));
  done_ = true;
}

}  // namespace

std::vector<RankOutcome> in_process_run(int size, const std::function<void(std::shared_ptr<Communicator>)>& body,
                                        double timeout_s, std::vector<CommFault> faults) {
  auto run = std::make_shared<RunState>();
  run->faults = std::move(faults);
  run->calls.assign(size, 0);
  auto world = std::make_shared<GroupState>();
  world->name = "world";
  for (int r = 0; r < size; ++r) world->world_ranks.push_back(r);
  std::vector<RankOutcome> out(size);
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(size));
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      try {
        body(std::make_shared<InProcessCommunicator>(run, world, r, timeout_s));
      } catch (const CommTimeout& e) {
        out[r] = {false, true, e.what()};
      } catch (const std::exception& e) {
        out[r] = {false, false, e.what()};
      }
      std::lock_guard<std::mutex> lock(run->mu);
      ++run->ended;
      run->cv.notify_all();
    });
  }
  {
    // Every rank has ended or stalls: release the stalled ones.
    std::unique_lock<std::mutex> lock(run->mu);
    run->cv.wait(lock, [&] { return run->ended + run->stalled >= size; });
    run->shutdown = true;
    run->cv.notify_all();
  }
  for (auto& t : threads) t.join();
  return out;
}

}  // namespace localist
