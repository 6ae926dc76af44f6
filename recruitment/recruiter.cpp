// SPDX-License-Identifier: Apache-2.0
// recruiter.cpp: see recruiter.h.
#include "recruitment/recruiter.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/seed_stream.h"

namespace localist {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

nlohmann::json domain_routes_json(const std::vector<DomainRoute>& routes) {
  auto out = nlohmann::json::array();
  for (const auto& r : routes) out.push_back({{"domain", r.domain}, {"slot", r.slot}});
  return out;
}

}  // namespace

struct Recruiter::Probe {
  std::vector<SampleRef> refs;
  std::vector<int32_t> window_domain;
  std::vector<ProbeToken> tokens;  // window-major, T per window
  std::vector<float> router;       // tokens x d_a
  std::vector<float> bits;
};

// A candidate's windows: held-out ones to measure on, and the pool the trial trains on.
struct Recruiter::CandidateData {
  std::vector<int64_t> windows;  // probe windows of the candidate
  std::vector<SampleRef> held, pool;
};

Recruiter::Recruiter(RecruiterSetup setup) : s_(std::move(setup)), trial_(s_.trial), median_(s_.config.median_rounds) {
  for (const auto& d : s_.trial.source_domains) {
    if (d.empty()) {
      source_domain_.push_back(-1);
      continue;
    }
    auto it = std::find(domain_names_.begin(), domain_names_.end(), d);
    if (it == domain_names_.end()) it = domain_names_.insert(domain_names_.end(), d);
    source_domain_.push_back(static_cast<int32_t>(it - domain_names_.begin()));
  }
}

Recruiter::~Recruiter() = default;

int64_t Recruiter::horizon(int64_t step) const {
  return s_.config.horizon_steps > 0 ? s_.config.horizon_steps : std::max(s_.total_steps - step, s_.config.interval);
}

bool Recruiter::due(int64_t step) const { return s_.config.enabled && step > 0 && step % s_.config.interval == 0; }

bool Recruiter::owns_block(int32_t domain) const {
  return std::any_of(domain_routes_.begin(), domain_routes_.end(),
                     [&](const DomainRoute& r) { return r.domain == domain_names_[domain]; });
}

int64_t Recruiter::free_slot() const {
  const auto active = s_.trial.model->active_slots();
  for (int64_t k = 0; k < s_.trial.model->config().k_max; ++k) {
    if (std::find(active.begin(), active.end(), k) == active.end()) return k;
  }
  return -1;
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
  if (d < 0 || !owns_block(d) || s_.config.untagged_fraction <= 0.0) return s_.trial.source_domains[source];
  const double u = seed_stream_unit(s_.trial.seed, SeedPurpose::kUntaggedWindow, step,
                                    static_cast<uint64_t>(start) * 131u + static_cast<uint64_t>(source));
  return u < s_.config.untagged_fraction ? std::string() : s_.trial.source_domains[source];
}

RuleSet Recruiter::rules_with(const std::vector<DomainRoute>& routes) const {
  return (s_.rules ? *s_.rules : RuleSet()).with_domain_routes(routes);
}

double Recruiter::measure(const std::vector<SampleRef>& refs, const std::vector<double>& dial, const RuleSet& rules,
                          double* tokens) const {
  const HeldoutBits h = trial_.heldout_bits(refs, dial, rules);
  if (tokens) *tokens = h.tokens;
  return h.mean;
}

void Recruiter::probe(int64_t step, const std::vector<double>& dial) {
  const auto& sampler = s_.trial.reader->sampler();
  const int64_t P = s_.config.probe_windows, T = sampler.seq_len(), da = s_.trial.model->config().anchor_dim;
  probe_ = std::make_unique<Probe>();
  Probe& p = *probe_;
  // Windows beyond this step's training batch: scored, never trained on at this step.
  for (int64_t i = 0; i < P; ++i) p.refs.push_back(sampler.sample(step, s_.trial.batch + i));
  auto bits = at::zeros({P, T}, at::kFloat), max_pi = at::zeros({P, T}, at::kFloat);
  auto router = at::zeros({P, T, da}, at::kFloat);
  trial_.score(p.refs, dial, true, rules_with(domain_routes_),
               [&](int64_t first, const at::Tensor& token_bits, int64_t t0, const ForwardResult& r) {
                 const int64_t b = token_bits.size(0), n = token_bits.size(1);
                 bits.narrow(0, first, b).narrow(1, t0, n).copy_(token_bits);
                 // The routing of the last layer: every position on every rank of a shard; this
                 // rank's positions counted, as its bits are.
                 const auto& last = r.traces.back();
                 const auto top = std::get<0>(last.pi.max(-1)).narrow(1, t0, n);
                 max_pi.narrow(0, first, b).narrow(1, t0, n).copy_(top.to(at::kFloat).cpu());
                 router.narrow(0, first, b).narrow(1, t0, n).copy_(last.router.narrow(1, t0, n).to(at::kFloat).cpu());
               });
  if (s_.trial.ranks->size() > 1) {  // each (window, position) was scored on exactly one rank: the sums are the values
    auto all = at::cat({bits.flatten(), max_pi.flatten(), router.flatten()});
    s_.trial.ranks->all_reduce(all, ReduceOp::kSum, "recruitment probe statistics (step " + std::to_string(step) + ")");
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
}

nlohmann::json Recruiter::begin_round(int64_t step, const std::vector<double>& dial) {
  const auto t0 = Clock::now();
  probe(step, dial);
  const double median = median_.add_round(probe_->bits);
  CandidateOptions o;
  o.phi = s_.config.phi, o.kappa = s_.config.kappa, o.n_min = s_.config.n_min;
  o.kmeans_k = s_.config.kmeans_k, o.kmeans_iters = s_.config.kmeans_iters;
  o.seed = seed_stream(s_.trial.seed, SeedPurpose::kCandidates, step);
  candidates_ =
      candidates_find(probe_->tokens, probe_->router, s_.trial.model->config().anchor_dim, median, domain_names_, o);
  times_.statistics += seconds_since(t0);
  return {{"event", "recruitment"}, {"step", step}, {"median_bits", median}};
}

Recruiter::CandidateData Recruiter::candidate_data(int64_t step, const Candidate& c) const {
  const Probe& p = *probe_;
  const auto& sampler = s_.trial.reader->sampler();
  const int64_t T = sampler.seq_len(), P = s_.config.probe_windows;
  CandidateData out;
  // The candidate's windows: of its domain, or where its cluster's tokens make up a quarter.
  std::vector<int64_t> per_window(P, 0);
  for (int64_t i : c.tokens) ++per_window[p.tokens[i].window];
  for (int64_t w = 0; w < P; ++w) {
    if (c.domain >= 0 ? p.window_domain[w] == c.domain : per_window[w] * 4 >= T) out.windows.push_back(w);
  }
  const auto& wins = out.windows;
  if (wins.size() < 2) return out;
  const size_t n_held = std::clamp<size_t>(static_cast<size_t>(std::lround(s_.config.heldout_fraction * wins.size())),
                                           1, wins.size() - 1);
  for (size_t j = 0; j < wins.size(); ++j) (j + n_held >= wins.size() ? out.held : out.pool).push_back(p.refs[wins[j]]);
  if (c.domain >= 0) {
    // Fresh windows of the domain's sources for the trial, drawn by the global sampler
    // at indices past this step's training batch and probe. The trial never sees the
    // probe's windows, so all of them measure the gain (more windows, a smaller SE).
    out.held.clear();
    for (int64_t w : wins) out.held.push_back(p.refs[w]);
    std::vector<int32_t> srcs;
    for (size_t i = 0; i < sampler.sources().size(); ++i) {
      if (source_domain_[i] == c.domain) srcs.push_back(static_cast<int32_t>(i));
    }
    out.pool.clear();
    for (int64_t i = 0; i < s_.config.n_try * s_.trial.batch; ++i) {
      out.pool.push_back(sampler.sample_among(step, s_.trial.batch + P + i, srcs));
    }
  }
  return out;
}

std::vector<TrainedTensor> Recruiter::trained_tensors(int64_t slot) const {
  const auto& cfg = s_.trial.model->config();
  std::vector<TrainedTensor> out;
  for (auto& l : s_.trial.model->layers) {
    out.push_back({l->router_w, nullptr});
    if (slot < 0 || !l->holds(slot)) continue;  // block parallel: the slot's owner trains its rows
    const int64_t row = l->row(slot);
    const at::Tensor* block[3] = {&l->qkv_w, &l->qkv_b, &l->out_w};
    for (int which = 0; which < 3; ++which) {
      out.push_back({*block[which],
                     [which, &cfg, row](const at::Tensor& t) { return block_slot_views_of(t, which, cfg, row); },
                     true});
    }
  }
  return out;
}

// The trial's slot: on, its q/k/v rows drawn afresh, its biases and output columns zero.
void Recruiter::switch_on_fresh(int64_t step, int64_t slot, const Candidate& c) {
  LocalistModel& model = *s_.trial.model;
  const auto& cfg = model.config();
  const auto active = model.active_slots();
  at::NoGradGuard no_grad;
  model.set_block_active(slot, true);
  // (Anchors other than a Hadamard code are not orthogonal: the centroid option removes
  // their components one after another, an approximate projection.)
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
  // blocks' locality biases a little) but the block can learn. An inactive slot's old
  // rows cannot be reused: a block-parallel rank holds only its blocks' rows, so an
  // inactive slot has none (the trial holds one on the planned owner, which alone draws).
  auto gen = at::detail::createCPUGenerator(
      seed_stream(s_.trial.seed, SeedPurpose::kBlockInit, step, static_cast<uint64_t>(slot)));
  for (auto& l : model.layers) {
    if (!l->holds(slot)) continue;
    const auto v = block_slot_params(*l, cfg, slot);
    for (int j = 0; j < 3; ++j) {
      v[j].copy_(at::empty(v[j].sizes(), at::kFloat).normal_(0.0, 0.02, gen).to(v[j].options()));
      v[3 + j].zero_();
    }
    v[6].zero_();
  }
}

BlockDecision Recruiter::try_candidate(int64_t step, const std::vector<double>& dial, double lr, nlohmann::json& rec) {
  LocalistModel& model = *s_.trial.model;
  const auto& cfg = model.config();
  BlockDecision d;
  // NOTE(one block per domain): a domain that owns a block routes every token there; a
  // second block could only take the domain over, so it is no candidate again (a domain
  // one block does not serve is what specialist LLMs, M11, are for).
  auto& cands = candidates_;
  cands.erase(std::remove_if(cands.begin(), cands.end(),
                             [&](const Candidate& c) { return c.domain >= 0 && owns_block(c.domain); }),
              cands.end());
  rec["candidates"] = cands.size();
  d.slot = free_slot();
  if (cands.empty() || d.slot < 0) {
    rec["decision"] = cands.empty() ? "no candidate" : "no free slot";
    return d;
  }
  auto t0 = Clock::now();
  const Candidate& c = cands.front();
  const CandidateData data = candidate_data(step, c);
  d.label = c.label;
  d.candidate_tokens = static_cast<int64_t>(c.tokens.size());
  d.candidate_windows = static_cast<int64_t>(data.windows.size());
  rec["candidate"] = c.label;
  rec["candidate_tokens"] = c.tokens.size();
  rec["candidate_windows"] = data.windows.size();
  if (data.windows.size() < 2) {
    rec["decision"] = "too few candidate windows";
    return d;
  }
  const int64_t T = s_.trial.reader->sampler().seq_len();
  const double n_eff = mdl_effective_tokens(static_cast<double>(data.windows.size()) / s_.config.probe_windows,
                                            horizon(step), s_.trial.batch * T);
  const RuleSet rules = rules_with(domain_routes_);
  // The trial's routing: the candidate domain's tokens go to the new block, as they will
  // if it is kept, so the gain measured is the block's as it will be used.
  d.route_domain = c.domain >= 0 && s_.config.domain_routes ? domain_names_[c.domain] : "";
  d.routes = domain_routes_;
  if (!d.route_domain.empty()) d.routes.push_back({d.route_domain, d.slot});
  const RuleSet trial_rules = rules_with(d.routes);
  d.bits_start = measure(data.held, dial, rules, &d.held_tokens);
  times_.decision += seconds_since(t0);

  t0 = Clock::now();
  d.tried = true;
  // Block parallel: the slot gets a row on its planned owner, which alone draws and
  // trains it (the same values as without block parallelism).
  if (s_.hold_trial_block) s_.hold_trial_block(d.slot);
  // What the trials can change: the routers, the slot's rows and columns, the buffers
  // (the slot's switch and anchor).
  std::vector<at::Tensor> changed;
  for (const auto& t : trained_tensors(d.slot)) {
    for (const auto& v : t.changed()) changed.push_back(v);
  }
  const ParameterSnapshot saved(model, changed);
  // NOTE(control trial): the same steps on the same batches with the router alone and no
  // new block; what the model learns that way is not the block's doing, so the gain is
  // measured against it, not against the state before the trial.
  trial_.train(step, s_.config.n_try, trained_tensors(-1), data.pool, rules, dial, lr);
  const HeldoutBits control = trial_.heldout_bits(data.held, dial, rules);
  d.control_bits = control.mean;
  saved.restore();
  // The trial: a free slot on, its output columns zero, only it and the router train.
  switch_on_fresh(step, d.slot, c);
  trial_.train(step, s_.config.n_try, trained_tensors(d.slot), data.pool, trial_rules, dial, lr);
  const HeldoutBits after = trial_.heldout_bits(data.held, dial, trial_rules);
  times_.trial += seconds_since(t0);

  t0 = Clock::now();
  // The gain is estimated from a few hundred held-out tokens: decide on its lower
  // confidence bound, SE from the per-window paired differences (control - trial).
  const double se = mdl_gain_standard_error(control.window_bits, after.window_bits, n_eff);
  d.mdl = mdl_decide_recruit(d.control_bits, after.mean, n_eff, mdl_block_parameters(cfg), cfg.k_max, s_.config.delta,
                             costs_bits_, se, s_.config.confidence_z);
  if (!d.accepted()) {
    saved.restore();
    if (s_.drop_trial_block) s_.drop_trial_block(d.slot);
  }
  times_.restore += seconds_since(t0);
  return d;
}

void Recruiter::commit(int64_t step, const BlockDecision& d, int32_t owner, nlohmann::json& rec) {
  probe_.reset();
  candidates_.clear();
  if (!d.tried) return;
  const auto t0 = Clock::now();
  const MdlDecision& m = d.mdl;
  rec.update({{"decision", d.accepted() ? "accepted" : "rejected"},
              {"slot", d.slot},
              {"owner_rank", d.accepted() ? owner : -1},
              {"heldout_tokens", d.held_tokens},
              {"n_eff", m.n_eff},
              {"bits_start", d.bits_start},
              {"bits_before", m.bits_before},
              {"bits_after", m.bits_after},
              {"gain_bits", m.gain_bits},
              {"se_bits", m.se_bits},
              {"z", m.z},
              {"cost_bits", m.cost_bits},
              {"delta_bits", m.delta_bits},
              {"j_before", m.j_before},
              {"j_after", m.j_after},
              {"accepted", d.accepted()},
              {"anchor", s_.config.anchor},
              {"route_domain", d.route_domain}});
  if (d.accepted()) {
    costs_bits_ += m.cost_bits;
    recruited_.push_back(d.slot);
    domain_routes_ = d.routes;
    ++map_epoch_;
    // Fresh Adam moments for the new block (a slot used before may have old ones).
    at::NoGradGuard no_grad;
    const auto& cfg = s_.trial.model->config();
    for (auto& l : s_.trial.model->layers) {
      if (!l->holds(d.slot)) continue;  // block parallel: its owner's
      for (auto& v : block_slot_moments(*l, cfg, d.slot, s_.moments)) v.zero_();
    }
  }
  log_ += rec.dump() + "\n";
  times_.restore += seconds_since(t0);
  rec["map_epoch"] = map_epoch_;
  spdlog::info(
      "recruitment at step {}: {} ({} tokens, {} windows): held-out bits/token {:.4f} at the start, {:.4f} "
      "after the router-only control; {}{}",
      step, d.label, d.candidate_tokens, d.candidate_windows, d.bits_start, d.control_bits, m.to_string(),
      d.accepted() ? fmt::format("; block slot {} switched on", d.slot) : "");
}

// NOTE(pruning): the symmetric rule, without retraining, for recruited blocks (the initial
// ones carry no cost in J, so the rule has nothing to weigh): a block is switched off on
// all probe windows (its heads serve every token, as a recruited block's gain is measured
// on all tokens of its candidate's windows); if the bits it saves, over all tokens of the
// horizon, are fewer than its cost minus δ, it stays off. At most one block goes per
// round (the one that saves least).
int64_t Recruiter::prune(int64_t step, const std::vector<double>& dial, nlohmann::json& rec) {
  if (!s_.config.prune) return -1;
  LocalistModel& model = *s_.trial.model;
  const auto& cfg = model.config();
  const int64_t T = s_.trial.reader->sampler().seq_len();
  const auto t0 = Clock::now();
  nlohmann::json out = nlohmann::json::array();
  MdlDecision best;
  int64_t best_slot = -1;
  const double n_eff = mdl_effective_tokens(1.0, horizon(step), s_.trial.batch * T);
  const auto& refs = probe_->refs;
  const HeldoutBits with =
      recruited_.empty() ? HeldoutBits() : trial_.heldout_bits(refs, dial, rules_with(domain_routes_));
  for (int64_t slot : recruited_) {
    model.set_block_active(slot, false);
    const HeldoutBits without = trial_.heldout_bits(refs, dial, rules_with(routes_without(slot)));
    model.set_block_active(slot, true);
    // Symmetric to recruiting: prune only when even the upper bound of what it saves is too little.
    const double se = mdl_gain_standard_error(without.window_bits, with.window_bits, n_eff);
    const MdlDecision d = mdl_decide_prune(with.mean, without.mean, n_eff, mdl_block_parameters(cfg), cfg.k_max,
                                           s_.config.delta, costs_bits_, se, s_.config.confidence_z);
    out.push_back({{"slot", slot},
                   {"n_eff", n_eff},
                   {"bits_with", with.mean},
                   {"bits_without", without.mean},
                   {"saves_bits", d.gain_bits},
                   {"se_bits", d.se_bits},
                   {"cost_bits", d.cost_bits},
                   {"prune", d.accepted}});
    if (d.accepted && (best_slot < 0 || d.gain_bits < best.gain_bits)) best = d, best_slot = slot;
  }
  if (best_slot >= 0) {
    model.set_block_active(best_slot, false);
    recruited_.erase(std::find(recruited_.begin(), recruited_.end(), best_slot));
    domain_routes_ = routes_without(best_slot);
    costs_bits_ = std::max(0.0, costs_bits_ - best.cost_bits);
    ++map_epoch_;
    const nlohmann::json pruned = {{"event", "recruitment"},
                                   {"step", step},
                                   {"decision", "pruned"},
                                   {"slot", best_slot},
                                   {"owner_rank", -1},
                                   {"n_eff", best.n_eff},
                                   {"bits_before", best.bits_before},
                                   {"bits_after", best.bits_after},
                                   {"gain_bits", best.gain_bits},
                                   {"se_bits", best.se_bits},
                                   {"z", best.z},
                                   {"cost_bits", best.cost_bits},
                                   {"delta_bits", best.delta_bits},
                                   {"j_before", best.j_before},
                                   {"j_after", best.j_after},
                                   {"accepted", true}};
    log_ += pruned.dump() + "\n";
    spdlog::info("recruitment at step {}: block slot {} pruned: {}", step, best_slot, best.to_string());
  }
  rec["prune"] = out;
  times_.decision += seconds_since(t0);
  return best_slot;
}

std::vector<DomainRoute> recruited_domain_routes(const nlohmann::json& state, int64_t k_max) {
  std::vector<DomainRoute> out;
  if (!state.is_object() || !state.contains("domain_routes")) return out;
  const std::string hint = "; the checkpoint is damaged: use an earlier one";
  try {
    for (const auto& r : state.at("domain_routes")) {
      out.push_back({r.at("domain").get<std::string>(), r.at("slot").get<int64_t>()});
      if (out.back().slot < 0 || out.back().slot >= k_max) {
        throw Error(
            fmt::format("the checkpoint's recruitment state routes domain {} to block slot {}, outside "
                        "[0, {}){}",
                        out.back().domain, out.back().slot, k_max, hint));
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("the checkpoint's recruitment state has malformed domain_routes (") + e.what() + ")" +
                hint);
  }
  return out;
}

nlohmann::json Recruiter::state() const {
  return {{"median_history", std::vector<double>(median_.history().begin(), median_.history().end())},
          {"costs_bits", costs_bits_},
          {"recruited_slots", recruited_},
          {"domain_routes", domain_routes_json(domain_routes_)}};
}

void Recruiter::restore(const nlohmann::json& state, const std::string& log) {
  if (state.is_object()) {
    const auto h = state.value("median_history", std::vector<double>{});
    median_.restore(std::deque<double>(h.begin(), h.end()));
    costs_bits_ = state.value("costs_bits", 0.0);
    recruited_ = state.value("recruited_slots", std::vector<int64_t>{});
    domain_routes_ = recruited_domain_routes(state, s_.trial.model->config().k_max);
  }
  log_ = log;
}

}  // namespace localist
