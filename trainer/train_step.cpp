// SPDX-License-Identifier: Apache-2.0
// train_step.cpp: see train_step.h.
#include "trainer/train_step.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/seed_stream.h"
#include "model/forward_pass.h"
#include "parallel/block_parallel.h"
#include "parallel/grad_sync.h"
#include "parallel/zero_optimizer.h"

namespace localist {
namespace {

using Clock = std::chrono::steady_clock;

// The phases of a step on the host's clock; on CUDA a traced step waits for the device
// at each mark, so that a phase's time is its kernels' and not their launches'.
struct PhaseClock {
  bool sync = false;
  Clock::time_point last = Clock::now();
  double lap() {
    if (sync) torch::cuda::synchronize();
    const auto now = Clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - last).count();
    last = now;
    return ms;
  }
};

// The step's statistics while it runs: double tensors on the device, so that a GPU step
// is not stalled by a host read per micro-batch (the host reads them once, after backward).
struct DeviceStats {
  at::Tensor loss, ce, omega, mutual_info, max_share;
  explicit DeviceStats(const at::Device& d) {
    for (auto* t : {&loss, &ce, &omega, &mutual_info, &max_share}) *t = at::zeros({}, at::dtype(at::kDouble).device(d));
  }
};

// Forward and backward of micro-batch m of this rank's rows; adds its statistics to s.
void micro_batch_pass(ModelGroup& g, int64_t step, int64_t m, const TokenBatch& batch, const at::Tensor& all,
                      const RuleSet& rules, const std::vector<double>& dial, bool trace, DeviceStats& s,
                      PhaseClock& clock, StepStats& times) {
  const TrainConfig& tc = g.setup().train;
  const int64_t T = g.setup().model.context, L = g.setup().model.n_layers, mb = tc.micro_batch;
  const int64_t first = m * mb, n = std::min(mb, batch.rows - first);  // the last micro-batch may be short
  const auto rows = all.narrow(0, first, n);
  std::vector<std::string> domains;
  if (!rules.empty()) {
    for (int64_t i = first; i < first + n; ++i) domains.push_back(g.row_domain(step, batch.source[i], batch.start[i]));
  }
  // Dropout draws from a stream fixed by (seed, step, micro-batch of the global batch),
  // so the same micro-batch sees the same masks on any number of ranks (of even slices;
  // uneven slices cut micro-batches elsewhere, so they key by the first row instead).
  const int64_t global_row = g.row_begin() + first;
  const uint64_t stream = global_row % mb == 0 ? static_cast<uint64_t>(global_row / mb)
                                               : (uint64_t(1) << 40) + static_cast<uint64_t>(global_row);
  at::manual_seed(seed_stream(g.setup().stream_seed, SeedPurpose::kDropout, step, stream));
  ForwardOptions fo;
  fo.dial = dial;
  fo.penalties = std::any_of(dial.begin(), dial.end(), [](double v) { return v > 0; });
  // The step's block-share statistic needs the routing only: the attention stays on the
  // fused kernel (a full trace would keep α and take the unfused path).
  fo.routing_trace = trace;
  fo.shard = g.blocks() ? &g.blocks()->shard() : nullptr;
  fo.checkpoint_activations = tc.activation_checkpointing;
  PassSpec spec;
  spec.rules = &rules;
  spec.token_texts = &g.token_texts();
  spec.device = g.setup().device;
  spec.bf16 = g.bf16();
  spec.pad_id = g.tokenizer().pad_id();
  const ForwardPass f =
      forward_with_rules(g.model(), rows.narrow(1, 0, T), rows.narrow(1, 1, T), domains, fo, spec, PassLoss::kMean);
  const ForwardResult& r = f.result;
  at::Tensor pen = at::zeros({}, f.ce.options());
  for (int64_t l = 0; l < static_cast<int64_t>(r.omega.size()); ++l) {
    pen = pen + dial[l] * (tc.penalty_mu * r.omega[l].to(at::kFloat) - tc.penalty_nu * r.mutual_info[l].to(at::kFloat));
  }
  pen = pen / static_cast<double>(L);
  // Every row of the global batch weighs the same, on any number of ranks: a micro-batch
  // counts by its share of the global batch (1/(accum·dp) exactly for even slices) and of
  // this rank's rows (1/accum); sync_step weighs the ranks by their rows.
  const double global_parts = static_cast<double>(g.setup().train.global_batch) / static_cast<double>(n);
  const double rank_parts = static_cast<double>(batch.rows) / static_cast<double>(n);
  const auto loss = (f.ce + pen) / global_parts;
  if (g.grad_sync() && m + 1 == g.accum()) g.grad_sync()->arm("gradients (step " + std::to_string(step) + ")");
  times.forward_ms += clock.lap();
  loss.backward();
  at::NoGradGuard no_grad;
  const double dp = g.mesh().dp_size;
  // Sequence parallel (bp > 1): ce is this rank's share of the replica's; the statistics
  // count it bp times, so that their mean over the replica's ranks is the whole.
  const double seq = fo.shard && fo.shard->sequence_parallel() && !f.ce_whole ? g.mesh().bp_size : 1.0;
  const auto ce = f.ce.detach().to(at::kDouble) * seq;
  s.ce = s.ce + ce / rank_parts;
  s.loss = s.loss + (ce + pen.detach().to(at::kDouble)) / global_parts * dp;
  for (int64_t l = 0; l < static_cast<int64_t>(r.omega.size()); ++l) {
    s.omega = s.omega + r.omega[l].detach().to(at::kDouble) / (L * rank_parts);
    s.mutual_info = s.mutual_info + r.mutual_info[l].detach().to(at::kDouble) / (L * rank_parts);
  }
  if (trace) {
    for (const auto& tr : r.traces) {
      const auto shares = at::one_hot(tr.hard.flatten(), r.active_blocks.size(0)).to(at::kDouble).mean(0);
      s.max_share = at::maximum(s.max_share, shares.max());
    }
  }
  times.backward_ms += clock.lap();
}

// The host's copy of the step's statistics: the one read-back of the step's losses.
StepStats host_stats(const DeviceStats& d) {
  const auto h = at::stack({d.loss, d.ce, d.omega, d.mutual_info, d.max_share}).cpu();
  const double* v = h.data_ptr<double>();
  StepStats s;
  s.loss = v[0], s.ce = v[1], s.omega = v[2], s.mutual_info = v[3], s.max_share = v[4];
  return s;
}

// Finishes the gradient sums and averages the statistics over the group.
void sync_step(ModelGroup& g, StepStats& s) {
  const auto c0 = Clock::now();
  if (g.grad_sync()) g.grad_sync()->finish();
  // The replicated parameters' gradients are partial per rank of a replica (sequence
  // parallel: its positions; the router: its blocks); summed over the data-parallel ranks
  // already, they add up over the replica's group in one flat all-reduce. (Under ZeRO
  // they are the ZeRO optimizer's, and its reduce-scatter over the whole group sums them.)
  if (!g.replica_summed().empty() && !g.zero()) {
    std::vector<at::Tensor> flat;
    for (const auto& p : g.replica_summed()) {
      if (p.grad().defined()) flat.push_back(p.grad().reshape({-1}));
    }
    if (!flat.empty()) {
      auto sum = at::cat(flat);
      g.mesh().bp_data->all_reduce(sum, ReduceOp::kSum, "replicated parameters' gradients over the replica");
      int64_t off = 0;
      for (const auto& p : g.replica_summed()) {
        if (!p.grad().defined()) continue;
        at::Tensor grad = p.grad();
        grad.copy_(sum.narrow(0, off, grad.numel()).view_as(grad));
        off += grad.numel();
      }
    }
  }
  if (g.zero()) g.zero()->reduce_gradients("gradients of replicated parameters, reduce-scattered (ZeRO)");
  if (g.zero_split()) g.zero_split()->reduce_gradients("gradients of the split tensors, reduce-scattered (ZeRO)");
  // Per-rank means weighed by the rank's rows (1 exactly for even slices).
  const double w = static_cast<double>((g.row_end() - g.row_begin()) * g.mesh().dp_size) /
                   static_cast<double>(g.setup().train.global_batch);
  auto stats = at::tensor(std::vector<double>{s.loss, s.ce * w, s.omega * w, s.mutual_info * w}, at::kDouble);
  g.mesh().ranks->all_reduce(stats, ReduceOp::kAvg, "loss statistics");
  auto shares = at::tensor(std::vector<double>{s.max_share}, at::kDouble);
  g.mesh().ranks->all_reduce(shares, ReduceOp::kMax, "block shares");
  s.loss = stats[0].item<double>(), s.ce = stats[1].item<double>();
  s.omega = stats[2].item<double>(), s.mutual_info = stats[3].item<double>(), s.max_share = shares[0].item<double>();
  // What backward did not hide (includes waiting for the slowest rank).
  s.comm_ms = std::chrono::duration<double, std::milli>(Clock::now() - c0).count();
}

// The global gradient norm of the whole model: block and FFN parameters are held in parts
// by the ranks of a replica (other ranks' rows are zero here), so their squares add up
// over the block-parallel group; everything else is replicated and counted once.
double clip_gradients(ModelGroup& g, double clip) {
  // Sums of squares on the device (one host read for the norm, which logging and the
  // clipping decision need).
  const auto opts = at::dtype(at::kDouble).device(g.setup().device);
  at::Tensor shared_sq = at::zeros({}, opts), block_sq = at::zeros({}, opts);
  for (const auto& t : g.adamw_params()) {
    if (!t.grad().defined()) continue;
    const auto sq = t.grad().to(at::kDouble).pow(2).sum();
    if (g.blocks() && g.blocks()->is_split_param(t)) {
      block_sq = block_sq + sq;
    } else {
      shared_sq = shared_sq + sq;
    }
  }
  const auto both = at::stack({shared_sq, block_sq}).cpu();
  double shared = both[0].item<double>(), block = both[1].item<double>();
  if (g.zero()) {
    // Each rank of the group holds the reduced gradient of its chunks only: of the
    // replicated parameters (chunks over the group) and of its share of the split
    // tensors (chunks over its data-parallel ranks), all distinct over the group.
    const double mine =
        g.zero()->chunk_grad_square_sum() + (g.zero_split() ? g.zero_split()->chunk_grad_square_sum() : 0.0);
    auto sq = at::tensor(std::vector<double>{mine}, at::kDouble);
    g.mesh().ranks->all_reduce(sq, ReduceOp::kSum, "gradient norm (ZeRO chunks)");
    shared += sq.item<double>();
  }
  if (g.mesh().bp) {
    auto sq = at::tensor(std::vector<double>{block}, at::kDouble);
    g.mesh().bp->all_reduce(sq, ReduceOp::kSum, "gradient norm");
    block = sq.item<double>();
  }
  const double norm = std::sqrt(shared + block);
  if (clip > 0 && norm > clip) {
    at::NoGradGuard no_grad;
    const double scale = clip / (norm + 1e-6);
    for (auto& t : g.adamw_params()) {
      if (t.grad().defined()) t.grad().mul_(scale);
    }
    if (g.zero()) g.zero()->scale_gradients(scale);
    if (g.zero_split()) g.zero_split()->scale_gradients(scale);
  }
  return norm;
}

}  // namespace

StepStats train_step(ModelGroup& g, int64_t step, const std::vector<double>& dial, double lr, bool trace) {
  const TrainConfig& tc = g.setup().train;
  g.release_assembled();  // training runs on this rank's share (a whole model was for evaluation or recruitment)
  const RuleSet& rules = g.step_rules();
  for (auto& pg : g.optimizer().param_groups()) static_cast<torch::optim::AdamWOptions&>(pg.options()).lr(lr);
  PhaseClock clock{trace && g.setup().device.is_cuda()};
  StepStats times;
  const TokenBatch batch = g.reader().read(step, g.mesh().dp_rank, g.mesh().dp_size);
  const auto all = at::tensor(std::vector<int64_t>(batch.tokens.begin(), batch.tokens.end()), at::kLong)
                       .view({batch.rows, batch.cols});
  g.zero_grad();
  DeviceStats d(g.setup().device);
  times.data_ms = clock.lap();
  for (int64_t m = 0; m < g.accum(); ++m) {
    micro_batch_pass(g, step, m, batch, all, rules, dial, trace && m == 0 && g.traces_steps(), d, clock, times);
  }
  StepStats s = host_stats(d);
  times.backward_ms += clock.lap();  // the read-back waits for the last kernels of backward
  if (g.mesh().ranks->size() > 1) sync_step(g, s);
  clock.lap();  // sync_step measures itself (comm_ms)
  if (!std::isfinite(s.loss)) {
    throw Error(
        fmt::format("training diverged at step {}: loss is {} (lower train.lr or raise warmup_steps)", step, s.loss));
  }
  s.grad_norm = clip_gradients(g, tc.grad_clip);
  g.optimizer().step();
  if (g.zero()) g.zero()->step(lr, "parameters after the ZeRO step, all-gathered (step " + std::to_string(step) + ")");
  if (g.zero_split()) {
    g.zero_split()->step(lr, "split tensors after the ZeRO step, all-gathered (step " + std::to_string(step) + ")");
  }
  s.data_ms = times.data_ms, s.forward_ms = times.forward_ms, s.backward_ms = times.backward_ms;
  s.optimizer_ms = clock.lap();
  return s;
}

}  // namespace localist
