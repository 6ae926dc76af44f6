// SPDX-License-Identifier: Apache-2.0
// pool_spawn.cpp: see pool_spawn.h.
#include "pool/pool_spawn.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "comm/messages.h"
#include "core/check.h"
#include "core/error.h"
#include "recruitment/mdl.h"
#include "recruitment/recruiter.h"
#include "recruitment/trial.h"
#include "trainer/train_step.h"

namespace localist {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Held-out windows are drawn by main's sampler at indices far past anything a step, a
// probe or a block trial of this step draws (those stay below batch·(n_try + 2) + probes).
constexpr int64_t kHeldoutIndex = int64_t(1) << 40;

HeldoutBits score(ModelGroup& g, const std::vector<SampleRef>& refs, const std::vector<double>& dial) {
  return Trial(g.trial_setup()).heldout_bits(refs, dial, g.step_rules());
}

nlohmann::json ranks_by_llm(const Pool& pool) {
  nlohmann::json out = nlohmann::json::object();
  for (size_t i = 0; i < pool.size(); ++i) {
    if (!pool.map().units[i].empty()) out[pool.name(i)] = pool.map().ranks(i);
  }
  return out;
}

}  // namespace

std::string spawn_saturation(bool recruitment_on, const std::string& log, const std::string& domain, bool has_route,
                             bool free_slot, int64_t rejections) {
  if (!recruitment_on) return "block recruitment is off";
  if (has_route) return "it has a recruited block";
  if (!free_slot) return "no free block slot";
  const std::string label = "domain " + domain;
  std::vector<bool> decided;  // this domain's trials, in order: accepted?
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || j.value("candidate", "") != label) continue;
    const std::string d = j.value("decision", "");
    if (d == "accepted" || d == "rejected") decided.push_back(d == "accepted");
  }
  if (static_cast<int64_t>(decided.size()) < rejections) return "";
  for (size_t k = decided.size() - static_cast<size_t>(rejections); k < decided.size(); ++k) {
    if (decided[k]) return "";
  }
  return fmt::format("its last {} block trials were rejected", rejections);
}

PoolSpawner::PoolSpawner(Pool& pool, const TrainConfig& train) : pool_(pool), train_(train) {}

bool PoolSpawner::due(int64_t step) const {
  const PoolRecruitConfig& r = pool_.config().recruit;
  if (!r.enabled || step <= 0 || step % r.interval != 0 || step + r.n_try > train_.steps) return false;
  return static_cast<int64_t>(pool_.config().existing_at(step).size()) < r.max_llms;
}

std::string pool_specialist_name(const PoolConfig& pool, const std::string& domain) {
  std::string base = "spec-";
  for (unsigned char ch : domain) {
    base += std::isalnum(ch) ? static_cast<char>(std::tolower(ch)) : (ch == '_' ? '_' : '-');
  }
  std::string name = base;
  for (int k = 2; pool.index(name) >= 0; ++k) name = base + "-" + std::to_string(k);
  return name;
}

std::string PoolSpawner::new_name(const std::string& domain) const {
  return pool_specialist_name(pool_.config(), domain);
}

std::vector<SampleRef> PoolSpawner::heldout_windows(const ModelGroup& main, int64_t step,
                                                    const std::vector<int32_t>& srcs) const {
  std::vector<SampleRef> refs;
  const auto& sampler = main.reader().sampler();
  for (int64_t i = 0; i < pool_.config().recruit.heldout_windows; ++i) {
    refs.push_back(sampler.sample_among(step, kHeldoutIndex + i, srcs));
  }
  return refs;
}

// d's share of the pool's training tokens: rows of d in main's batches over the next
// interval (at most 64 steps; a pure function of the stream) over the pool's rows.
double PoolSpawner::domain_share(const ModelGroup& main, int64_t step, const std::vector<int32_t>& srcs) const {
  const auto& sampler = main.reader().sampler();
  const int64_t steps = std::min<int64_t>({pool_.config().recruit.interval, 64, train_.steps - step});
  int64_t rows = 0;
  for (int64_t s = step; s < step + steps; ++s) {
    for (int64_t i = 0; i < sampler.global_batch(); ++i) {
      rows += std::count(srcs.begin(), srcs.end(), sampler.sample(s, i).source) > 0;
    }
  }
  int64_t pool_rows = 0;
  for (int i : pool_.config().existing_at(step)) pool_rows += pool_.config().llms[i].global_batch;
  return static_cast<double>(rows) / static_cast<double>(std::max<int64_t>(1, steps * pool_rows));
}

PoolSpawner::Candidate PoolSpawner::pick_candidate(int64_t step, ModelGroup& main, const std::vector<double>& dial,
                                                   nlohmann::json& rec) const {
  const PoolConfig& pc = pool_.config();
  const auto& sources = main.reader().sampler().sources();
  // Main's tagged domains, started, not owned, whose block recruitment has saturated, main
  // keeping another domain of its own.
  auto mine_at = [&](size_t s) {
    return sources[s].start_step <= step && pc.owner_at(main.source_domain()[s], step) == 0;
  };
  std::vector<std::string> domains;
  for (size_t s = 0; s < sources.size(); ++s) {
    const std::string& d = main.source_domain()[s];
    if (!d.empty() && mine_at(s) && std::find(domains.begin(), domains.end(), d) == domains.end()) domains.push_back(d);
  }
  nlohmann::json considered = nlohmann::json::array();
  Candidate best;
  for (const std::string& d : domains) {
    std::vector<int32_t> srcs;
    bool other = false;
    for (size_t s = 0; s < sources.size(); ++s) {
      if (!mine_at(s)) continue;
      if (main.source_domain()[s] == d)
        srcs.push_back(static_cast<int32_t>(s));
      else
        other = true;
    }
    nlohmann::json c = {{"domain", d}};
    const Recruiter* r = main.recruiter();
    const auto& routes = r ? r->domain_routes() : std::vector<DomainRoute>{};
    const bool routed = std::any_of(routes.begin(), routes.end(), [&](const DomainRoute& x) { return x.domain == d; });
    const bool free_slot = static_cast<int64_t>(main.model().active_slots().size()) < main.setup().model.k_max;
    const std::string why =
        spawn_saturation(r != nullptr, r ? r->log() : "", d, routed, free_slot, pc.recruit.block_rejections);
    if (!other) {
      c["eligible"] = false, c["why"] = "main would keep no domain of its own";
    } else if (why.empty()) {
      c["eligible"] = false, c["why"] = "block recruitment may still serve it";
    } else {
      std::vector<SampleRef> refs = heldout_windows(main, step, srcs);
      const HeldoutBits b = score(main, refs, dial);
      c["eligible"] = true, c["why"] = why, c["bits_main"] = b.mean;
      if (best.domain.empty() || b.mean > best.bits.mean) {
        best.domain = d, best.srcs = srcs, best.bits = b, best.held = std::move(refs);
      }
    }
    considered.push_back(c);
  }
  rec["candidates"] = considered;
  return best;
}

PoolSpawner::SpawnTrial PoolSpawner::run_trial(int64_t step, ModelGroup& main, const Candidate& c,
                                               const std::vector<double>& dial) {
  auto t0 = Clock::now();
  const PoolConfig& pc = pool_.config();
  const PoolRecruitConfig& rc = pc.recruit;
  const int64_t L = main.setup().model.n_layers;
  SpawnTrial t;
  t.name = new_name(c.domain);
  PoolConfig with = pc;
  PoolLlmConfig cand{t.name, {c.domain}, "main", step, rc.specialist_batch, true};
  with.llms.push_back(cand);
  GroupSetup cs = pool_.setup_in(with, with.llms.size() - 1);
  cs.stream_seed = pool_stream_seed(main.setup().seed, t.name + "#trial");
  cs.lead = false;  // trial groups are quiet: the round's record says what they did
  GroupSetup ctl = pool_.setup_in(pc, 0);
  ctl.lead = false;
  const CheckpointContents state = pool_.state_of(0, step);
  auto control = std::make_unique<ModelGroup>(ctl, &state, "main");
  t.specialist = std::make_unique<ModelGroup>(cs, &state, "main");
  t.share = domain_share(main, step, c.srcs);
  t.context = main.setup().model.context;
  times_.decision_s += seconds_since(t0);
  t0 = Clock::now();
  for (int64_t k = 0; k < rc.n_try; ++k) {
    const std::vector<double> dk = train_.dial.at(step + k, L, main.setup().seed);
    const double lr = train_.lr.at(step + k);
    train_step(*control, step + k, dk, lr, false);
    train_step(*t.specialist, step + k, dk, lr, false);
  }
  t.parent = score(*control, c.held, dial);
  t.spec = score(*t.specialist, c.held, dial);
  times_.trial_s += seconds_since(t0);
  ++times_.trials;
  return t;
}

void PoolSpawner::decide(int64_t step, const Candidate& c, const SpawnTrial& t, nlohmann::json& rec) const {
  const PoolConfig& pc = pool_.config();
  const PoolRecruitConfig& rc = pc.recruit;
  const int64_t T = t.context;
  const double n_d = rc.horizon_tokens * t.share, documents = n_d / static_cast<double>(T);
  double costs = 0;
  for (const auto& d : pool_.pool_log()) {
    if (d.value("accepted", false)) costs += d.value("cost_bits", 0.0);
  }
  const auto llms_after = static_cast<int64_t>(pc.existing_at(step).size()) + 1;
  const double se = mdl_gain_standard_error(t.parent.window_bits, t.spec.window_bits, n_d);
  const MdlDecision m =
      mdl_decide_spawn(t.parent.mean, t.spec.mean, n_d, documents, llms_after, t.specialist->whole_parameters(),
                       rc.max_llms, rc.delta, costs, se, rc.confidence_z);
  rec.update({{"domain", c.domain},
              {"name", t.name},
              {"decision", m.accepted ? "accepted" : "rejected"},
              {"accepted", m.accepted},
              {"n_try", rc.n_try},
              {"specialist_batch", rc.specialist_batch},
              {"heldout_windows", c.held.size()},
              {"heldout_tokens", t.spec.tokens},
              {"share", t.share},
              {"horizon_tokens", rc.horizon_tokens},
              {"n_d", n_d},
              {"documents", documents},
              {"bits_start", c.bits.mean},
              {"b_p", t.parent.mean},
              {"b_s", t.spec.mean},
              {"gain_bits", m.gain_bits},
              {"naming_bits", m.naming_bits},
              {"se_bits", m.se_bits},
              {"z", m.z},
              {"p_llm", t.specialist->whole_parameters()},
              {"cost_bits", m.cost_bits},
              {"delta_bits", m.delta_bits},
              {"j_before", m.j_before},
              {"j_after", m.j_after},
              {"llms_after", m.accepted ? llms_after : llms_after - 1}});
}

nlohmann::json PoolSpawner::decide_on_main(int64_t step, ModelGroup& main, std::unique_ptr<ModelGroup>* tried) {
  auto t0 = Clock::now();
  const std::vector<double> dial = train_.dial.at(step, main.setup().model.n_layers, main.setup().seed);
  nlohmann::json rec = {{"event", "pool_recruitment"}, {"step", step}, {"parent", "main"}};
  const Candidate c = pick_candidate(step, main, dial, rec);
  if (c.domain.empty()) {
    rec["decision"] = "no candidate";
    rec["accepted"] = false;
    times_.decision_s += seconds_since(t0);
    return rec;
  }
  times_.decision_s += seconds_since(t0);
  SpawnTrial t = run_trial(step, main, c, dial);
  t0 = Clock::now();
  decide(step, c, t, rec);
  *tried = std::move(t.specialist);  // kept whatever this rank decided: main's lead's decision is the one that holds
  times_.decision_s += seconds_since(t0);
  return rec;
}

nlohmann::json PoolSpawner::round(int64_t step) {
  const auto t0 = Clock::now();
  ++times_.rounds;
  Communicator& world = pool_.world();
  ModelGroup* main = pool_.group(0);
  std::unique_ptr<ModelGroup> trial;
  std::string mine;
  if (main) {
    const nlohmann::json rec = decide_on_main(step, *main, &trial);
    if (main->mesh().ranks->rank() == 0) mine = rec.dump();
  }
  // Main's lead tells the world (the other ranks wait here while the trial runs: what
  // a trial costs the rest of the pool).
  nlohmann::json rec;
  const auto t_wait = Clock::now();
  for (const auto& s :
       all_gather_strings(world, mine, "pool recruitment decision (step " + std::to_string(step) + ")")) {
    if (!s.empty()) rec = nlohmann::json::parse(s);
  }
  if (!main) times_.wait_s += seconds_since(t_wait);
  LOCALIST_CHECK(!rec.is_null(), "pool recruitment: no rank of main reported a decision at step ", step);
  rec["ranks_before"] = ranks_by_llm(pool_);
  const auto t1 = Clock::now();
  if (rec.value("accepted", false)) {
    PoolLlmConfig llm{rec.at("name").get<std::string>(),
                      {rec.at("domain").get<std::string>()},
                      "main",
                      step,
                      pool_.config().recruit.specialist_batch,
                      true};
    pool_.admit(step, llm, std::move(trial));
    times_.admit_s += seconds_since(t1);
  }
  rec["ranks_after"] = ranks_by_llm(pool_);
  pool_.log_decision(rec);
  if (world.rank() == 0) {
    if (rec.value("decision", "") == "no candidate") {
      spdlog::info("pool recruitment at step {}: no candidate ({})", step, rec.at("candidates").dump());
    } else {
      spdlog::info(
          "pool recruitment at step {}: domain {} (specialist {}): N_d {:.3g}, bits/token b_p {:.4f} b_s {:.4f}, "
          "G {:.4g} bits (R_d {:.4g}, SE {:.4g}, z {:.1f}), c_LLM {:.4g}, delta {:.4g}, J {:.6g} -> {:.6g}: {}",
          step, rec.value("domain", ""), rec.value("name", ""), rec.value("n_d", 0.0), rec.value("b_p", 0.0),
          rec.value("b_s", 0.0), rec.value("gain_bits", 0.0), rec.value("naming_bits", 0.0), rec.value("se_bits", 0.0),
          rec.value("z", 0.0), rec.value("cost_bits", 0.0), rec.value("delta_bits", 0.0), rec.value("j_before", 0.0),
          rec.value("j_after", 0.0), rec.value("decision", ""));
    }
  }
  times_.round_s += seconds_since(t0);
  return rec;
}

}  // namespace localist
