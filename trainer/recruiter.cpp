// recruiter.cpp: see recruiter.h.
#include "trainer/recruiter.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/mix64.h"
#include "recruitment/mdl.h"
#include "trainer/block_parallel.h"
#include "trainer/checkpoint_schema.h"

namespace localist {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// [begin, end) of n items that data-parallel rank r of d handles.
std::pair<int64_t, int64_t> slice(int64_t n, int r, int d) { return {n * r / d, n * (r + 1) / d}; }

at::Tensor tokens_of(const TokenBatch& b) {
  return at::tensor(std::vector<int64_t>(b.tokens.begin(), b.tokens.end()), at::kLong).view({b.rows, b.cols});
}

}  // namespace

struct Recruiter::Probe {
  std::vector<SampleRef> refs;
  std::vector<int32_t> window_domain;
  std::vector<ProbeToken> tokens;  // window-major, T per window
  std::vector<float> router;       // tokens x d_a
  std::vector<float> bits;
};

Recruiter::Recruiter(RecruiterSetup setup) : s_(std::move(setup)), median_(s_.config.median_rounds) {
  for (const auto& d : s_.source_domains) {
    if (d.empty()) {
      source_domain_.push_back(-1);
      continue;
    }
    auto it = std::find(domain_names_.begin(), domain_names_.end(), d);
    if (it == domain_names_.end()) it = domain_names_.insert(domain_names_.end(), d);
    source_domain_.push_back(static_cast<int32_t>(it - domain_names_.begin()));
  }
}

int64_t Recruiter::horizon(int64_t step) const {
  return s_.config.horizon_steps > 0 ? s_.config.horizon_steps : std::max(s_.total_steps - step, s_.config.interval);
}

bool Recruiter::due(int64_t step) const {
  return s_.config.enabled && step > 0 && step % s_.config.interval == 0;
}

bool Recruiter::owns_block(int32_t domain) const {
  return std::any_of(domain_routes_.begin(), domain_routes_.end(),
                     [&](const DomainRoute& r) { return r.domain == domain_names_[domain]; });
}

std::vector<DomainRoute> Recruiter::routes_without(int64_t slot) const {
  std::vector<DomainRoute> out;
  for (const auto& r : domain_routes_) {
    if (r.slot != slot) out.push_back(r);
  }
  return out;
}

std::string Recruiter::training_domain(int64_t step, int32_t source, int64_t start) const {
  const int32_t d = source_domain_.at(source);
  if (d < 0 || !owns_block(d) || s_.config.untagged_fraction <= 0.0) return s_.source_domains[source];
  const uint64_t h = mix64(s_.seed ^ mix64(static_cast<uint64_t>(step) * 1000003u + static_cast<uint64_t>(start) * 131u +
                                           static_cast<uint64_t>(source)));
  const bool hidden = static_cast<double>(h >> 11) * 0x1.0p-53 < s_.config.untagged_fraction;
  return hidden ? std::string() : s_.source_domains[source];
}

RuleSet Recruiter::rules_with(const std::vector<DomainRoute>& routes) const {
  return (s_.rules ? *s_.rules : RuleSet()).with_domain_routes(routes);
}

RuleMasks Recruiter::masks_of(const RuleSet& rules, const std::vector<SampleRef>& refs,
                              const at::Tensor& inputs) const {
  if (rules.empty()) return {};
  std::vector<std::string> domains;
  for (const auto& r : refs) domains.push_back(s_.source_domains.at(r.source));
  static const std::vector<std::string> none;
  return rules.masks(inputs, domains, s_.token_texts ? *s_.token_texts : none, s_.device);
}

void Recruiter::score(const std::vector<SampleRef>& refs, const std::vector<double>& dial, bool trace,
                      const RuleSet& rules,
                      const std::function<void(int64_t, const at::Tensor&, const ForwardResult&)>& visit) {
  LocalistModel& model = *s_.model;
  const int64_t T = s_.reader->sampler().seq_len();
  const auto [begin, end] = slice(static_cast<int64_t>(refs.size()), s_.world->rank(), s_.world->size());
  if (end <= begin) return;
  const auto all = tokens_of(s_.reader->read_refs({refs.begin() + begin, refs.begin() + end}));
  at::NoGradGuard no_grad;
  model.eval();
  for (int64_t off = 0; off < end - begin; off += s_.micro_batch) {
    const int64_t n = std::min(s_.micro_batch, end - begin - off);
    const auto rows = all.narrow(0, off, n);
    const RuleMasks masks = masks_of(rules, {refs.begin() + begin + off, refs.begin() + begin + off + n},
                                     rows.narrow(1, 0, T));
    ForwardOptions fo;
    fo.dial = dial;
    fo.trace = trace;
    fo.rules = rules.empty() ? nullptr : &masks;
    const auto r = model.forward(rows.narrow(1, 0, T).to(s_.device), fo);
    const auto logits = r.logits.to(at::kFloat);
    const auto ce = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}),
                                           rows.narrow(1, 1, T).reshape({-1}).to(s_.device), {}, at::Reduction::None,
                                           s_.pad_id);
    visit(begin + off, (ce / std::log(2.0)).view({rows.size(0), T}).cpu(), r);
  }
  model.train();
}

Recruiter::Probe Recruiter::probe(int64_t step, const std::vector<double>& dial) {
  LocalistModel& model = *s_.model;
  const auto& sampler = s_.reader->sampler();
  const int64_t P = s_.config.probe_windows, T = sampler.seq_len(), da = model.config().anchor_dim;
  Probe p;
  // Windows beyond this step's training batch: scored, never trained on at this step.
  for (int64_t i = 0; i < P; ++i) p.refs.push_back(sampler.sample(step, s_.global_batch + i));
  auto bits = at::zeros({P, T}, at::kFloat), max_pi = at::zeros({P, T}, at::kFloat);
  auto router = at::zeros({P, T, da}, at::kFloat);
  score(p.refs, dial, true, rules_with(domain_routes_),
        [&](int64_t first, const at::Tensor& token_bits, const ForwardResult& r) {
    const int64_t b = token_bits.size(0);
    bits.narrow(0, first, b).copy_(token_bits);
    const auto& last = r.traces.back();  // routing and router vectors of the last layer
    max_pi.narrow(0, first, b).copy_(std::get<0>(last.pi.max(-1)).to(at::kFloat).cpu());
    router.narrow(0, first, b).copy_(last.router.to(at::kFloat).cpu());
  });
  if (s_.world->size() > 1) {  // each window was scored by exactly one rank: the sums are the values
    auto all = at::cat({bits.flatten(), max_pi.flatten(), router.flatten()});
    s_.world->all_reduce(all, ReduceOp::kSum, "recruitment probe statistics (step " + std::to_string(step) + ")");
    bits.copy_(all.narrow(0, 0, P * T).view_as(bits));
    max_pi.copy_(all.narrow(0, P * T, P * T).view_as(max_pi));
    router.copy_(all.narrow(0, 2 * P * T, P * T * da).view_as(router));
  }
  const float* b = bits.data_ptr<float>();
  const float* m = max_pi.data_ptr<float>();
  p.bits.assign(b, b + P * T);
  p.router.assign(router.data_ptr<float>(), router.data_ptr<float>() + P * T * da);
  for (int64_t w = 0; w < P; ++w) {
    p.window_domain.push_back(source_domain_[p.refs[w].source]);
    for (int64_t t = 0; t < T; ++t) p.tokens.push_back({b[w * T + t], m[w * T + t], p.window_domain[w], w});
  }
  return p;
}

// Mean bits per token over `refs` (eval mode, every rank its share, summed); *count = tokens.
double Recruiter::heldout_bits(const std::vector<SampleRef>& refs, const std::vector<double>& dial,
                               const RuleSet& rules, double* count) {
  auto sums = at::zeros({2}, at::kDouble);
  score(refs, dial, false, rules, [&](int64_t, const at::Tensor& token_bits, const ForwardResult&) {
    sums[0] += token_bits.to(at::kDouble).sum().item<double>();
    sums[1] += static_cast<double>(token_bits.numel());
  });
  if (s_.world->size() > 1) s_.world->all_reduce(sums, ReduceOp::kSum, "recruitment held-out bits");
  *count = sums[1].item<double>();
  return sums[0].item<double>() / std::max(1.0, *count);
}

void Recruiter::train_trial(int64_t step, int64_t slot, const std::vector<SampleRef>& pool, const RuleSet& rules,
                            const std::vector<double>& dial, double lr) {
  LocalistModel& model = *s_.model;
  const auto& cfg = model.config();
  const int64_t T = s_.reader->sampler().seq_len(), G = s_.global_batch;
  // Router weights, and (a real trial, slot >= 0) each layer's block-partitioned tensors.
  std::vector<at::Tensor> params, blocks;
  for (auto& l : model.layers) {
    params.push_back(l->router_w);
    if (slot < 0) continue;
    for (auto* t : {&l->qkv_w, &l->qkv_b, &l->out_w}) params.push_back(*t), blocks.push_back(*t);
  }
  torch::optim::AdamW trial(params, torch::optim::AdamWOptions(lr).betas({s_.beta1, s_.beta2}).weight_decay(0.0));
  std::vector<at::Tensor> frozen;  // the other blocks' values, put back after every update
  for (const auto& t : blocks) frozen.push_back(t.detach().clone());
  model.train();
  for (int64_t t = 0; t < s_.config.n_try; ++t) {
    std::vector<SampleRef> refs;
    for (int64_t i = 0; i < G; ++i) refs.push_back(pool[(t * G + i) % pool.size()]);
    const auto [begin, end] = slice(G, s_.world->rank(), s_.world->size());
    trial.zero_grad();
    if (end > begin) {
      const auto all = tokens_of(s_.reader->read_refs({refs.begin() + begin, refs.begin() + end}));
      for (int64_t off = 0; off < end - begin; off += s_.micro_batch) {
        const int64_t n = std::min(s_.micro_batch, end - begin - off);
        const auto rows = all.narrow(0, off, n);
        const RuleMasks masks = masks_of(rules, {refs.begin() + begin + off, refs.begin() + begin + off + n},
                                         rows.narrow(1, 0, T));
        at::manual_seed(mix64(s_.seed ^ mix64(static_cast<uint64_t>(step) * 7919u + t * 131u + begin + off)));
        ForwardOptions fo;
        fo.dial = dial;
        fo.rules = rules.empty() ? nullptr : &masks;
        const auto logits = model.forward(rows.narrow(1, 0, T).to(s_.device), fo).logits.to(at::kFloat);
        const auto ce = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}),
                                               rows.narrow(1, 1, T).reshape({-1}).to(s_.device), {},
                                               at::Reduction::Mean, s_.pad_id);
        (ce * static_cast<double>(rows.size(0)) / static_cast<double>(G)).backward();
      }
    }
    if (s_.world->size() > 1) {
      // Only what trains is summed over the ranks: the router and the new slot's rows and
      // columns (1/k_max of the block tensors); the other blocks are put back after the step.
      std::vector<at::Tensor> grads;  // views into the gradients
      for (auto& p : params) {
        if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
      }
      for (auto& l : model.layers) {
        grads.push_back(l->router_w.grad());
        if (slot < 0) continue;
        for (const auto& v : block_slot_views(l->qkv_w.grad(), l->qkv_b.grad(), l->out_w.grad(), cfg, slot)) {
          grads.push_back(v);
        }
      }
      std::vector<at::Tensor> flat_parts;
      for (const auto& g : grads) flat_parts.push_back(g.reshape({-1}));
      auto flat = at::cat(flat_parts);
      s_.world->all_reduce(flat, ReduceOp::kSum, "recruitment trial gradients (step " + std::to_string(step) + ")");
      int64_t o = 0;
      for (auto& g : grads) {
        g.copy_(flat.narrow(0, o, g.numel()).view(g.sizes()));
        o += g.numel();
      }
    }
    trial.step();
    at::NoGradGuard no_grad;
    for (size_t l = 0; slot >= 0 && l < model.layers.size(); ++l) {
      auto& L = *model.layers[l];
      const auto now = block_slot_views(L.qkv_w, L.qkv_b, L.out_w, cfg, slot);
      std::vector<at::Tensor> keep;
      for (const auto& v : now) keep.push_back(v.clone());
      for (size_t k = 0; k < 3; ++k) blocks[3 * l + k].copy_(frozen[3 * l + k]);
      for (size_t j = 0; j < now.size(); ++j) now[j].copy_(keep[j]);
    }
  }
  model.zero_grad();
}

nlohmann::json Recruiter::round(int64_t step, const std::vector<double>& dial, double lr) {
  LocalistModel& model = *s_.model;
  const auto& cfg = model.config();
  const auto& sampler = s_.reader->sampler();
  const int64_t T = sampler.seq_len(), P = s_.config.probe_windows;
  nlohmann::json rec = {{"event", "recruitment"}, {"step", step}};
  auto t0 = Clock::now();
  const Probe p = probe(step, dial);
  const double median = median_.add_round(p.bits);
  CandidateOptions o;
  o.phi = s_.config.phi, o.kappa = s_.config.kappa, o.n_min = s_.config.n_min;
  o.kmeans_k = s_.config.kmeans_k, o.kmeans_iters = s_.config.kmeans_iters;
  o.seed = mix64(s_.seed ^ static_cast<uint64_t>(step));
  auto cands = candidates_find(p.tokens, p.router, cfg.anchor_dim, median, domain_names_, o);
  rec["median_bits"] = median;
  times_.statistics += seconds_since(t0);
  if (s_.config.prune) rec["prune"] = prune(step, p, dial);
  // NOTE(one block per domain): a domain that owns a block routes every token there; a
  // second block could only take the domain over, so it is no candidate again (a domain
  // one block does not serve is what specialist LLMs, M11, are for).
  cands.erase(std::remove_if(cands.begin(), cands.end(),
                             [&](const Candidate& c) { return c.domain >= 0 && owns_block(c.domain); }),
              cands.end());
  rec["candidates"] = cands.size();
  const auto active = model.active_slots();
  int64_t slot = -1;
  for (int64_t k = 0; k < cfg.k_max && slot < 0; ++k) {
    if (std::find(active.begin(), active.end(), k) == active.end()) slot = k;
  }
  if (cands.empty() || slot < 0) {
    rec["decision"] = cands.empty() ? "no candidate" : "no free slot";
    return rec;
  }
  t0 = Clock::now();
  const Candidate& c = cands.front();
  // The candidate's windows: of its domain, or where its cluster's tokens make up a quarter.
  std::vector<int64_t> wins;
  std::vector<int64_t> per_window(P, 0);
  for (int64_t i : c.tokens) ++per_window[p.tokens[i].window];
  for (int64_t w = 0; w < P; ++w) {
    if (c.domain >= 0 ? p.window_domain[w] == c.domain : per_window[w] * 4 >= T) wins.push_back(w);
  }
  rec["candidate"] = c.label;
  rec["candidate_tokens"] = c.tokens.size();
  rec["candidate_windows"] = wins.size();
  if (wins.size() < 2) {
    rec["decision"] = "too few candidate windows";
    return rec;
  }
  const size_t n_held = std::clamp<size_t>(static_cast<size_t>(std::lround(s_.config.heldout_fraction * wins.size())),
                                           1, wins.size() - 1);
  std::vector<SampleRef> held, pool;
  for (size_t j = 0; j < wins.size(); ++j) (j + n_held >= wins.size() ? held : pool).push_back(p.refs[wins[j]]);
  if (c.domain >= 0) {
    // Fresh windows of the domain's sources for the trial, drawn by the global sampler
    // at indices past this step's training batch and probe.
    std::vector<int32_t> srcs;
    for (size_t i = 0; i < sampler.sources().size(); ++i) {
      if (source_domain_[i] == c.domain) srcs.push_back(static_cast<int32_t>(i));
    }
    pool.clear();
    for (int64_t i = 0; i < s_.config.n_try * s_.global_batch; ++i) {
      pool.push_back(sampler.sample_among(step, s_.global_batch + P + i, srcs));
    }
  }
  const double n_eff = mdl_effective_tokens(static_cast<double>(wins.size()) / P, horizon(step), s_.global_batch * T);
  double held_tokens = 0;
  const RuleSet rules = rules_with(domain_routes_);
  // The trial's routing: the candidate domain's tokens go to the new block, as they will
  // if it is kept, so the gain measured is the block's as it will be used.
  const std::string route_domain = c.domain >= 0 && s_.config.domain_routes ? domain_names_[c.domain] : "";
  std::vector<DomainRoute> trial_routes = domain_routes_;
  if (!route_domain.empty()) trial_routes.push_back({route_domain, slot});
  const RuleSet trial_rules = rules_with(trial_routes);
  const double before = heldout_bits(held, dial, rules, &held_tokens);
  times_.decision += seconds_since(t0);

  t0 = Clock::now();
  std::vector<at::Tensor> saved;
  for (const auto& t : model.parameters()) saved.push_back(t.detach().clone());
  for (const auto& t : model.buffers()) saved.push_back(t.detach().clone());
  auto restore_saved = [&] {
    at::NoGradGuard no_grad;
    size_t i = 0;
    for (auto& t : model.parameters()) t.copy_(saved[i++]);
    for (auto& t : model.buffers()) t.copy_(saved[i++]);
  };
  // NOTE(control trial): the same steps on the same batches with the router alone and no
  // new block; what the model learns that way is not the block's doing, so the gain is
  // measured against it, not against the state before the trial.
  train_trial(step, -1, pool, rules, dial, lr);
  double control_tokens = 0;
  const double control = heldout_bits(held, dial, rules, &control_tokens);
  restore_saved();

  // The trial: a free slot on, its output columns zero, only it and the router train.
  // (Anchors other than a Hadamard code are not orthogonal: the centroid option removes
  // their components one after another, an approximate projection.)
  {
    at::NoGradGuard no_grad;
    model.set_block_active(slot, true);
    if (s_.config.anchor == "centroid") {
      // The candidate's mean router vector, projected off the other active anchors.
      auto v = at::tensor(std::vector<double>(c.centroid.begin(), c.centroid.end()), at::kDouble);
      for (int64_t k : active) {
        const auto a = model.anchors[k].to(at::kDouble).cpu();
        v = v - (v * a).sum() * a;
      }
      const double norm = v.norm().item<double>();
      if (norm > 1e-6) model.anchors[slot].copy_((v / norm).to(model.anchors.dtype()));
    }
    // NOTE(new block init): q/k/v rows drawn afresh (normal, std 0.02 as at model
    // construction, from a generator seeded by run seed, step and slot, so every rank
    // draws the same), biases and output columns zero: the block's heads add nothing at
    // first (at λ > 0 routing now also spreads over its anchor, which shifts the other
    // blocks' locality biases a little) but the block can learn. An inactive slot's old rows cannot be reused: block
    // parallelism re-assembles only owned blocks, so an unowned slot's rows are zero.
    auto gen = at::detail::createCPUGenerator(mix64(s_.seed ^ mix64(static_cast<uint64_t>(step) * 4099u + slot)));
    for (auto& l : model.layers) {
      const auto v = block_slot_views(l->qkv_w, l->qkv_b, l->out_w, cfg, slot);
      for (int j = 0; j < 3; ++j) {
        v[j].copy_(at::empty(v[j].sizes(), at::kFloat).normal_(0.0, 0.02, gen).to(v[j].options()));
        v[3 + j].zero_();
      }
      v[6].zero_();
    }
  }
  train_trial(step, slot, pool, trial_rules, dial, lr);
  double after_tokens = 0;
  const double after = heldout_bits(held, dial, trial_rules, &after_tokens);
  times_.trial += seconds_since(t0);

  t0 = Clock::now();
  const MdlDecision d = mdl_decide_recruit(control, after, n_eff, mdl_block_parameters(cfg), cfg.k_max,
                                           s_.config.delta, costs_bits_);
  // The new block's owner under the next block map (applied by every rank now).
  const int32_t owner = d.accepted ? (s_.place ? s_.place(slot) : 0) : -1;
  rec.update({{"decision", d.accepted ? "accepted" : "rejected"}, {"slot", slot}, {"owner_rank", owner},
              {"heldout_tokens", held_tokens}, {"n_eff", d.n_eff}, {"bits_start", before}, {"bits_before", d.bits_before},
              {"bits_after", d.bits_after}, {"gain_bits", d.gain_bits}, {"cost_bits", d.cost_bits},
              {"delta_bits", d.delta_bits}, {"j_before", d.j_before}, {"j_after", d.j_after}, {"accepted", d.accepted},
              {"anchor", s_.config.anchor},
              {"route_domain", route_domain}});
  if (d.accepted) {
    costs_bits_ += d.cost_bits;
    recruited_.push_back(slot);
    domain_routes_ = trial_routes;
    ++map_epoch_;
    // Fresh Adam moments for the new block (a slot used before may have old ones).
    at::NoGradGuard no_grad;
    for (auto& l : model.layers) {
      auto *sw = checkpoint_adam_state(*s_.optimizer, l->qkv_w), *sb = checkpoint_adam_state(*s_.optimizer, l->qkv_b),
           *so = checkpoint_adam_state(*s_.optimizer, l->out_w);
      if (!sw || !sb || !so) continue;
      for (const auto& v : block_slot_views(sw->exp_avg(), sb->exp_avg(), so->exp_avg(), cfg, slot)) v.zero_();
      for (const auto& v : block_slot_views(sw->exp_avg_sq(), sb->exp_avg_sq(), so->exp_avg_sq(), cfg, slot)) v.zero_();
    }
  } else {
    restore_saved();
  }
  log_ += rec.dump() + "\n";
  times_.restore += seconds_since(t0);
  rec["map_epoch"] = map_epoch_;
  spdlog::info("recruitment at step {}: {} ({} tokens, {} windows): held-out bits/token {:.4f} at the start, {:.4f} "
               "after the router-only control; {}{}", step, c.label, c.tokens.size(), wins.size(), before, control,
               d.to_string(), d.accepted ? fmt::format("; block slot {} switched on", slot) : "");
  return rec;
}

// NOTE(pruning): the symmetric rule, without retraining, for recruited blocks (the initial
// ones carry no cost in J, so the rule has nothing to weigh): a block is switched off on
// all probe windows (its heads serve every token, as a recruited block's gain is measured
// on all tokens of its candidate's windows); if the bits it saves, over all tokens of the
// horizon, are fewer than its cost minus δ, it stays off. At most one block goes per
// round (the one that saves least).
nlohmann::json Recruiter::prune(int64_t step, const Probe& p, const std::vector<double>& dial) {
  LocalistModel& model = *s_.model;
  const auto& cfg = model.config();
  const int64_t T = s_.reader->sampler().seq_len();
  const auto t0 = Clock::now();
  nlohmann::json out = nlohmann::json::array();
  MdlDecision best;
  int64_t best_slot = -1;
  const double n_eff = mdl_effective_tokens(1.0, horizon(step), s_.global_batch * T);
  double n = 0;
  const double with = recruited_.empty() ? 0.0 : heldout_bits(p.refs, dial, rules_with(domain_routes_), &n);
  for (int64_t slot : recruited_) {
    model.set_block_active(slot, false);
    const double without = heldout_bits(p.refs, dial, rules_with(routes_without(slot)), &n);
    model.set_block_active(slot, true);
    const MdlDecision d = mdl_decide_prune(with, without, n_eff, mdl_block_parameters(cfg), cfg.k_max,
                                           s_.config.delta, costs_bits_);
    out.push_back({{"slot", slot}, {"n_eff", n_eff}, {"bits_with", with},
                   {"bits_without", without}, {"saves_bits", d.gain_bits}, {"cost_bits", d.cost_bits},
                   {"prune", d.accepted}});
    if (d.accepted && (best_slot < 0 || d.gain_bits < best.gain_bits)) best = d, best_slot = slot;
  }
  if (best_slot >= 0) {
    model.set_block_active(best_slot, false);
    recruited_.erase(std::find(recruited_.begin(), recruited_.end(), best_slot));
    domain_routes_ = routes_without(best_slot);
    if (s_.place) s_.place(best_slot);
    costs_bits_ = std::max(0.0, costs_bits_ - best.cost_bits);
    ++map_epoch_;
    const nlohmann::json rec = {{"event", "recruitment"}, {"step", step}, {"decision", "pruned"}, {"slot", best_slot},
                                {"owner_rank", -1}, {"n_eff", best.n_eff}, {"bits_before", best.bits_before},
                                {"bits_after", best.bits_after}, {"gain_bits", best.gain_bits},
                                {"cost_bits", best.cost_bits}, {"delta_bits", best.delta_bits},
                                {"j_before", best.j_before}, {"j_after", best.j_after}, {"accepted", true}};
    log_ += rec.dump() + "\n";
    spdlog::info("recruitment at step {}: block slot {} pruned: {}", step, best_slot, best.to_string());
  }
  times_.decision += seconds_since(t0);
  return out;
}

namespace {
nlohmann::json domain_routes_json(const std::vector<DomainRoute>& routes) {
  auto out = nlohmann::json::array();
  for (const auto& r : routes) out.push_back({{"domain", r.domain}, {"slot", r.slot}});
  return out;
}
}  // namespace

std::vector<DomainRoute> recruited_domain_routes(const nlohmann::json& state, int64_t k_max) {
  std::vector<DomainRoute> out;
  if (!state.is_object() || !state.contains("domain_routes")) return out;
  const std::string hint = "; the checkpoint is damaged: use an earlier one";
  try {
    for (const auto& r : state.at("domain_routes")) {
      out.push_back({r.at("domain").get<std::string>(), r.at("slot").get<int64_t>()});
      if (out.back().slot < 0 || out.back().slot >= k_max) {
        throw Error(fmt::format("the checkpoint's recruitment state routes domain {} to block slot {}, outside "
                                "[0, {}){}", out.back().domain, out.back().slot, k_max, hint));
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("the checkpoint's recruitment state has malformed domain_routes (") + e.what() + ")" + hint);
  }
  return out;
}

nlohmann::json Recruiter::state() const {
  return {{"median_history", std::vector<double>(median_.history().begin(), median_.history().end())},
          {"costs_bits", costs_bits_}, {"recruited_slots", recruited_},
          {"domain_routes", domain_routes_json(domain_routes_)}};
}

void Recruiter::restore(const nlohmann::json& state, const std::string& log) {
  if (state.is_object()) {
    const auto h = state.value("median_history", std::vector<double>{});
    median_.restore(std::deque<double>(h.begin(), h.end()));
    costs_bits_ = state.value("costs_bits", 0.0);
    recruited_ = state.value("recruited_slots", std::vector<int64_t>{});
    domain_routes_ = recruited_domain_routes(state, s_.model->config().k_max);
  }
  log_ = log;
}

}  // namespace localist
