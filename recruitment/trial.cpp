// SPDX-License-Identifier: Apache-2.0
// trial.cpp: see trial.h.
#include "recruitment/trial.h"

#include <ATen/ATen.h>
#include <torch/optim/adamw.h>

#include <cmath>

#include "core/seed_stream.h"

namespace localist {
namespace {

// [begin, end) of n items that rank r of d handles.
std::pair<int64_t, int64_t> slice(int64_t n, int r, int d) { return {n * r / d, n * (r + 1) / d}; }

at::Tensor tokens_of(const TokenBatch& b) {
  return at::tensor(std::vector<int64_t>(b.tokens.begin(), b.tokens.end()), at::kLong).view({b.rows, b.cols});
}

}  // namespace

ParameterSnapshot::ParameterSnapshot(LocalistModel& model, std::vector<at::Tensor> tensors) {
  for (const auto& t : model.buffers()) tensors.push_back(t);
  at::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    tensors_.push_back(t.detach());
    saved_.push_back(t.detach().clone());
  }
}

void ParameterSnapshot::restore() const {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < tensors_.size(); ++i) tensors_[i].copy_(saved_[i]);
}

Trial::Trial(TrialSetup setup) : s_(std::move(setup)) {}

PassSpec Trial::pass(const RuleSet& rules) const {
  PassSpec p;
  p.rules = &rules;
  p.token_texts = s_.token_texts;
  p.device = s_.device;
  p.pad_id = s_.pad_id;
  return p;
}

std::vector<std::string> Trial::domains_of(const std::vector<SampleRef>& refs, size_t begin, size_t end) const {
  std::vector<std::string> out;
  for (size_t i = begin; i < end; ++i) out.push_back(s_.source_domains.at(refs[i].source));
  return out;
}

std::pair<int64_t, int64_t> Trial::my_windows(int64_t n) const {
  // Without a shard every rank of the group is a replica of its own.
  return shard() ? slice(n, s_.sharding.dp_rank, s_.sharding.dp_size) : slice(n, s_.ranks->rank(), s_.ranks->size());
}

void Trial::score(const std::vector<SampleRef>& refs, const std::vector<double>& dial, bool routing,
                  const RuleSet& rules, const Visit& visit) const {
  LocalistModel& model = *s_.model;
  const int64_t T = s_.reader->sampler().seq_len();
  const auto [begin, end] = my_windows(static_cast<int64_t>(refs.size()));
  if (end <= begin) return;
  const auto all = tokens_of(s_.reader->read_refs({refs.begin() + begin, refs.begin() + end}));
  at::NoGradGuard no_grad;
  model.eval();
  const PassSpec spec = pass(rules);
  const BlockShard* sh = shard();
  // Positions this rank counts: its own under sequence parallelism (the loss of every
  // position is on every rank of the replica when the vocabulary is split: cut to them).
  const auto [t0, t1] = sh ? sh->seq_range(T) : std::pair<int64_t, int64_t>{0, T};
  for (int64_t off = 0; off < end - begin; off += s_.micro_batch) {
    const int64_t n = std::min(s_.micro_batch, end - begin - off);
    const auto rows = all.narrow(0, off, n);
    ForwardOptions fo;
    fo.dial = dial;
    fo.routing_trace = routing;
    fo.shard = sh;
    const ForwardPass f =
        forward_with_rules(model, rows.narrow(1, 0, T), rows.narrow(1, 1, T),
                           domains_of(refs, begin + off, begin + off + n), fo, spec, PassLoss::kPerToken);
    auto bits = (f.ce / std::log(2.0)).view({n, -1});
    if (f.ce_whole) bits = bits.narrow(1, t0, t1 - t0);  // every position: keep this rank's
    visit(begin + off, bits.cpu(), t0, f.result);
  }
  model.train();
}

HeldoutBits Trial::heldout_bits(const std::vector<SampleRef>& refs, const std::vector<double>& dial,
                                const RuleSet& rules) const {
  const int64_t T = s_.reader->sampler().seq_len();
  auto sums = at::zeros({2}, at::kDouble);
  auto windows = at::zeros({static_cast<int64_t>(refs.size())}, at::kDouble);
  score(refs, dial, false, rules, [&](int64_t first, const at::Tensor& token_bits, int64_t, const ForwardResult&) {
    const auto b = token_bits.to(at::kDouble);
    sums[0] += b.sum().item<double>();
    sums[1] += static_cast<double>(b.numel());
    windows.narrow(0, first, b.size(0)).add_(b.sum(1) / static_cast<double>(T));
  });
  if (s_.ranks->size() > 1) {
    // Each (window, position) was scored on exactly one rank: the sums are the values.
    s_.ranks->all_reduce(sums, ReduceOp::kSum, "recruitment held-out bits");
    s_.ranks->all_reduce(windows, ReduceOp::kSum, "recruitment held-out bits per window");
  }
  HeldoutBits h;
  h.tokens = sums[1].item<double>();
  h.mean = sums[0].item<double>() / std::max(1.0, h.tokens);
  h.window_bits.assign(windows.data_ptr<double>(), windows.data_ptr<double>() + windows.numel());
  return h;
}

namespace {

// Sums the gradient views over `ranks` in one flat message (the control plane: device
// gradients go through the host).
void sum_views(const std::vector<at::Tensor>& grads, Communicator& ranks, const std::string& what) {
  if (grads.empty()) return;
  std::vector<at::Tensor> flat_parts;
  for (const auto& g : grads) flat_parts.push_back(g.reshape({-1}));
  auto flat = at::cat(flat_parts);
  const bool staged = !ranks.carries_device(flat.device());
  at::Tensor wire = staged ? flat.cpu() : flat;
  ranks.all_reduce(wire, ReduceOp::kSum, what);
  if (staged) flat = wire.to(flat.device());
  int64_t o = 0;
  for (const auto& g : grads) {
    g.copy_(flat.narrow(0, o, g.numel()).view(g.sizes()));
    o += g.numel();
  }
}

}  // namespace

void Trial::sum_trained_gradients(int64_t step, const std::vector<TrainedTensor>& trained) const {
  // Only what trains is summed over the ranks (for a block trial: the router and the new
  // slot's rows and columns, 1/k_max of the block tensors).
  std::vector<at::Tensor> shared, blocks;  // views into the gradients
  for (const auto& t : trained) {
    if (!t.param.grad().defined()) t.param.mutable_grad() = at::zeros_like(t.param);
  }
  // Block parallel: a block's rows are on its owner (in every replica) only.
  const bool split = shard() && s_.sharding.same_blocks && s_.sharding.same_blocks.get() != s_.ranks.get();
  for (const auto& t : trained) {
    auto& into = split && t.block ? blocks : shared;
    if (!t.part) {
      into.push_back(t.param.grad());
      continue;
    }
    for (const auto& v : t.part(t.param.grad())) into.push_back(v);
  }
  const std::string at = " (step " + std::to_string(step) + ")";
  sum_views(shared, *s_.ranks, "recruitment trial gradients" + at);
  if (split && s_.sharding.same_blocks->size() > 1) {
    sum_views(blocks, *s_.sharding.same_blocks, "recruitment trial gradients of the new block" + at);
  }
}

void Trial::gradients(int64_t step, int64_t update, const std::vector<TrainedTensor>& trained,
                      const std::vector<SampleRef>& refs, const RuleSet& rules, const std::vector<double>& dial) const {
  LocalistModel& model = *s_.model;
  const int64_t T = s_.reader->sampler().seq_len(), G = static_cast<int64_t>(refs.size());
  const PassSpec spec = pass(rules);
  const auto [begin, end] = my_windows(G);
  if (end > begin) {
    const auto all = tokens_of(s_.reader->read_refs({refs.begin() + begin, refs.begin() + end}));
    for (int64_t off = 0; off < end - begin; off += s_.micro_batch) {
      const int64_t n = std::min(s_.micro_batch, end - begin - off);
      const auto rows = all.narrow(0, off, n);
      at::manual_seed(
          seed_stream(s_.seed, SeedPurpose::kTrialDropout, step, static_cast<uint64_t>(update * 131 + begin + off)));
      ForwardOptions fo;
      fo.dial = dial;
      fo.checkpoint_activations = s_.checkpoint_activations;
      fo.shard = shard();
      const ForwardPass f =
          forward_with_rules(model, rows.narrow(1, 0, T), rows.narrow(1, 1, T),
                             domains_of(refs, begin + off, begin + off + n), fo, spec, PassLoss::kMean);
      (f.ce * static_cast<double>(rows.size(0)) / static_cast<double>(G)).backward();
    }
  }
  if (s_.ranks->size() > 1) sum_trained_gradients(step, trained);
}

void Trial::train(int64_t step, int64_t steps, const std::vector<TrainedTensor>& trained,
                  const std::vector<SampleRef>& pool, const RuleSet& rules, const std::vector<double>& dial,
                  double lr) const {
  LocalistModel& model = *s_.model;
  const int64_t G = s_.batch;
  std::vector<at::Tensor> params;
  for (const auto& t : trained) params.push_back(t.param);
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(lr).betas({s_.beta1, s_.beta2}).weight_decay(0.0));
  model.train();
  for (int64_t t = 0; t < steps; ++t) {
    std::vector<SampleRef> refs;
    for (int64_t i = 0; i < G; ++i) refs.push_back(pool[(t * G + i) % pool.size()]);
    opt.zero_grad();
    gradients(step, t, trained, refs, rules, dial);
    // A partly trained tensor's gradient is zero outside its part: AdamW without weight
    // decay then leaves those elements bit for bit as they were (zero moments, zero step).
    at::NoGradGuard no_grad;
    for (const auto& tt : trained) {
      if (!tt.part) continue;
      at::Tensor g = tt.param.grad();
      std::vector<at::Tensor> keep;
      for (const auto& v : tt.part(g)) keep.push_back(v.clone());
      g.zero_();
      const auto views = tt.part(g);
      for (size_t j = 0; j < views.size(); ++j) views[j].copy_(keep[j]);
    }
    opt.step();
  }
  model.zero_grad();
}

}  // namespace localist
