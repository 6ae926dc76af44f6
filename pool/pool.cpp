// SPDX-License-Identifier: Apache-2.0
// pool.cpp: see pool.h. A re-plan runs in two phases so that it cannot deadlock: first
// every missing (LLM, rank) state is sent point to point in pool order (a rank that held
// the LLM, or its parent for a new specialist, sends; ranks that held it copy locally),
// then every rank builds its groups on the new split of the world, in pool order.
#include "pool/pool.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpoint_writer.h"
#include "comm/messages.h"
#include "core/check.h"
#include "core/error.h"
#include "core/mix64.h"
#include "recruitment/recruiter.h"

namespace localist {
namespace {

constexpr int kStateTag = 7100;  // + 2 · LLM index (header, tensors)

// What a checkpoint of the first replica would take of an LLM from this rank's
// block-parallel place (with the shared tensors when `shared`).
NamedTensors share_of(ModelGroup& g, bool shared) {
  LlmWrite w;
  w.name = g.setup().name;
  w.model = &g.model();
  w.optimizer = &g.optimizer();
  w.distributed_state = [&g](const at::Tensor& p) { return g.distributed_state(p); };
  w.map = g.block_map();
  w.dp_rank = 0;  // every replica holds the same state
  w.bp_rank = g.mesh().bp_rank;
  w.lead = shared;
  NamedTensors tensors;
  checkpoint_llm_tensors(w, /*copy=*/false, tensors);
  return tensors;
}

// An LLM's state as a checkpoint would hold it, in memory, from this rank's share: the
// whole state under bp 1; with bp > 1 the first rank's blocks only (gather_state adds
// the other block-parallel ranks' shares).
CheckpointContents capture(ModelGroup& g, int64_t step) {
  CheckpointContents c;
  c.dir = "the state of LLM '" + g.setup().name + "' at step " + std::to_string(step);
  const Tokenizer& tok = g.tokenizer();
  c.meta = CheckpointMeta{step, 0, tok.vocab_size(), g.setup().seed, tok.kind(), tok.hash(), tok.spec()};
  LlmCheckpoint l;
  l.name = g.setup().name;
  l.map = g.block_map();
  if (g.recruiter()) l.recruitment_log = g.recruiter()->log(), l.recruitment = g.recruiter()->state();
  c.llms.push_back(l);
  for (auto& [k, t] : share_of(g, /*shared=*/true)) c.tensors[k] = t;
  return c;
}

// Under bp > 1 a block's moments live only on its owner: the other ranks of the first
// replica hand their shares to its first rank (`holder`), which then has the whole state.
void gather_state(Communicator& world, ModelGroup* g, const std::vector<int>& replica, int me, int tag,
                  CheckpointContents* whole) {
  const int holder = replica.front();
  for (size_t b = 1; b < replica.size(); ++b) {
    const std::string what = "block shares of LLM '" + (g ? g->setup().name : std::string("?")) + "'";
    if (me == replica[b]) send_named_tensors(world, share_of(*g, /*shared=*/false), holder, tag, what);
    if (me == holder) {
      for (auto& [k, t] : recv_named_tensors(world, replica[b], tag, what)) whole->tensors[k] = t;
    }
  }
}

void send_state(Communicator& world, const CheckpointContents& c, int dst, int tag) {
  const LlmCheckpoint& l = c.llms.front();
  const nlohmann::json header = {{"dir", c.dir},
                                 {"step", c.meta.step},
                                 {"vocab", c.meta.vocab_size},
                                 {"seed", c.meta.seed},
                                 {"tok_kind", c.meta.tokenizer_kind},
                                 {"tok_hash", c.meta.tokenizer_hash},
                                 {"tok_spec", c.meta.tokenizer_spec},
                                 {"name", l.name},
                                 {"active", l.map.active},
                                 {"owner", l.map.owner},
                                 {"epoch", l.map.epoch},
                                 {"bp", l.map.bp},
                                 {"log", l.recruitment_log},
                                 {"recruitment", l.recruitment}};
  const std::string what = "state of LLM '" + l.name + "' to rank " + std::to_string(dst);
  send_string(world, header.dump(), dst, tag, what);
  send_named_tensors(world, NamedTensors(c.tensors.begin(), c.tensors.end()), dst, tag, what);
}

CheckpointContents recv_state(Communicator& world, int src, int tag, const std::string& llm) {
  const std::string what = "state of LLM '" + llm + "' from rank " + std::to_string(src);
  const auto h = nlohmann::json::parse(recv_string(world, src, tag, what));
  CheckpointContents c;
  c.dir = h.at("dir").get<std::string>();
  c.meta = CheckpointMeta{h.at("step").get<int64_t>(),         0,
                          h.at("vocab").get<int64_t>(),        h.at("seed").get<uint64_t>(),
                          h.at("tok_kind").get<std::string>(), h.at("tok_hash").get<std::string>(),
                          h.at("tok_spec").get<std::string>()};
  LlmCheckpoint l;
  l.name = h.at("name").get<std::string>();
  l.map.active = h.at("active").get<std::vector<uint8_t>>();
  l.map.owner = h.at("owner").get<std::vector<int32_t>>();
  l.map.epoch = h.at("epoch").get<int64_t>();
  l.map.bp = h.at("bp").get<int32_t>();
  l.recruitment_log = h.at("log").get<std::string>();
  l.recruitment = h.at("recruitment");
  c.llms.push_back(l);
  for (auto& [k, t] : recv_named_tensors(world, src, tag, what)) c.tensors[k] = t;
  return c;
}

bool contains(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }
bool contains_domain(const std::vector<std::string>& v, const std::string& d) {
  return std::find(v.begin(), v.end(), d) != v.end();
}

}  // namespace

uint64_t pool_stream_seed(uint64_t seed, const std::string& llm) {
  if (llm == "main") return seed;
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the name
  for (unsigned char ch : llm) h = (h ^ ch) * 1099511628211ull;
  return mix64(seed ^ mix64(h));
}

std::vector<StreamPhase> pool_stream_phases(const PoolConfig& pool, size_t llm,
                                            const std::vector<std::string>& domains) {
  auto sources_where = [&](auto pred) {
    std::vector<int32_t> out;
    for (size_t s = 0; s < domains.size(); ++s) {
      if (pred(domains[s])) out.push_back(static_cast<int32_t>(s));
    }
    return out;
  };
  std::vector<StreamPhase> phases;
  if (llm != 0) {
    const auto& mine = pool.llms[llm].domains;
    phases.push_back({pool.llms[llm].branch_step,
                      sources_where([&](const std::string& d) { return contains_domain(mine, d); }),
                      {},
                      0});
    return phases;
  }
  std::vector<int64_t> points{0};
  for (int64_t b : pool.branch_steps()) {
    if (b > 0) points.push_back(b);
  }
  const int64_t batch = pool.llms[0].global_batch;
  for (int64_t at : points) {
    const auto owned = pool.owned_at(at);
    StreamPhase p;
    p.from_step = at;
    p.own = sources_where([&](const std::string& d) { return !contains_domain(owned, d); });
    p.replay = sources_where([&](const std::string& d) { return contains_domain(owned, d); });
    if (!p.replay.empty()) {
      p.replay_rows = std::min<int64_t>(batch - 1, std::llround(pool.generalist_replay * static_cast<double>(batch)));
    }
    phases.push_back(p);
  }
  return phases;
}

Pool::Pool(PoolSetup setup, int64_t start_step, const CheckpointContents* resumed) : s_(std::move(setup)) {
  if (resumed) add_spawned(*resumed);
  const int W = s_.world->size(), bp = static_cast<int>(s_.base.block_parallel);
  const std::vector<double> loads = loads_at(start_step - 1);
  std::vector<std::string> expected;
  for (size_t i = 0; i < loads.size(); ++i) {
    if (loads[i] > 0) expected.push_back(name(i));
  }
  PoolMap previous;
  bool have_previous = false;
  if (resumed) {
    check_resumed_pool(*resumed, expected, start_step);
    if (resumed->state.contains("pool_map")) {
      // The checkpoint's map, re-indexed by name (a config may add specialists for later).
      const PoolMap held = PoolMap::from_json(resumed->state.at("pool_map"));
      previous = held;
      previous.units.assign(size(), {});
      for (size_t k = 0; k < resumed->llms.size() && k < held.units.size(); ++k) {
        previous.units[s_.pool.index(resumed->llms[k].name)] = held.units[k];
      }
      have_previous = true;
    }
  }
  if (have_previous && previous.world == W && previous.bp == bp) {
    map_ = previous;  // exact resume: the same ranks train the same LLMs
  } else {
    map_ = pool_map_plan(loads, W, bp, have_previous ? &previous : nullptr);
  }
  split_world();
  groups_.resize(size());
  for (size_t i = 0; i < size(); ++i) {
    if (map_.has(i, s_.world->rank())) groups_[i] = build(i, resumed, name(i));
  }
  if (s_.world->rank() == 0 && s_.pool.declared) {
    spdlog::info("pool map (epoch {}): {}", map_.epoch, map_.describe(names()));
  }
}

Pool::~Pool() = default;

void Pool::check_resumed_pool(const CheckpointContents& c, const std::vector<std::string>& expected,
                              int64_t start_step) const {
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  std::vector<std::string> held;
  for (const auto& l : c.llms) held.push_back(l.name);
  if (held != expected) {
    throw ConfigError("--resume: " + c.dir + " holds the LLMs " + list(held) + ", but the pool config has " +
                      list(expected) + " before step " + std::to_string(start_step) +
                      " (a specialist added to a run must branch at the checkpoint's step or later)");
  }
  // What the checkpoint says of each LLM must be what the config says (format 1: main only).
  for (const auto& l : c.llms) {
    const PoolLlmConfig& cfg = s_.pool.llms[s_.pool.index(l.name)];
    const auto& i = l.info;
    auto differs = [&](const char* key, const nlohmann::json& want) {
      if (i.contains(key) && i.at(key) != want) {
        throw ConfigError("--resume: LLM '" + l.name + "' has " + key + " " + i.at(key).dump() + " in " + c.dir +
                          " but " + want.dump() + " in the pool config (an LLM's history cannot change)");
      }
    };
    differs("parent", cfg.branch_from);
    differs("branch_step", cfg.branch_step);
    differs("domains", cfg.domains);
    differs("global_batch", cfg.global_batch);
  }
}

std::vector<std::string> Pool::names() const {
  std::vector<std::string> out;
  for (const auto& l : s_.pool.llms) out.push_back(l.name);
  return out;
}

std::vector<double> Pool::loads_at(int64_t step) const { return s_.pool.loads_at(step, s_.base.model.context); }

int64_t Pool::tokens_before(int64_t step) const {
  int64_t tokens = 0;
  for (size_t i = 0; i < size(); ++i) {
    const int64_t from = i == 0 ? 0 : s_.pool.llms[i].branch_step;
    tokens += std::max<int64_t>(0, step - from) * s_.pool.llms[i].global_batch * s_.base.model.context;
  }
  return tokens;
}

std::vector<ModelGroup*> Pool::local_groups() const {
  std::vector<ModelGroup*> out;
  for (const auto& g : groups_) {
    if (g) out.push_back(g.get());
  }
  return out;
}

GroupSetup Pool::setup_for(size_t llm) const { return setup_in(s_.pool, llm); }

void Pool::split_world() {
  if (!s_.pool.declared) {
    comm_ = s_.world;  // one LLM on every rank: its group is the world, as without a pool
    return;
  }
  const int color = map_.group_color(s_.world->rank());
  comm_ = s_.world->split(color, s_.world->rank(), "pool[" + std::to_string(color) + "]");
  comm_->set_timeout(s_.world->timeout_s());
}

std::unique_ptr<ModelGroup> Pool::build(size_t llm, const CheckpointContents* from, const std::string& source) {
  return std::make_unique<ModelGroup>(setup_for(llm), from, source);
}

bool Pool::advance_to(int64_t step) {
  std::vector<size_t> fresh;
  for (size_t i = 1; i < size(); ++i) {
    // (A spawned specialist joined through admit() at its branch step.)
    if (s_.pool.llms[i].branch_step == step && !s_.pool.llms[i].spawned) fresh.push_back(i);
  }
  if (fresh.empty()) return false;
  std::string branched;
  for (size_t i : fresh) branched += (branched.empty() ? "" : ", ") + name(i) + " from " + s_.pool.llms[i].branch_from;
  replan(step, fresh, "branched " + branched);
  return true;
}

void Pool::admit(int64_t step, PoolLlmConfig llm, std::unique_ptr<ModelGroup> trial) {
  llm.spawned = true;
  llm.branch_step = step;
  const std::string why = "spawned " + llm.name + " from " + llm.branch_from;
  s_.pool.llms.push_back(std::move(llm));
  const size_t i = size() - 1;
  if (trial) pending_.emplace(i, std::move(trial));
  replan(step, {i}, why);
  pending_.clear();
}

void Pool::replan(int64_t step, const std::vector<size_t>& fresh, const std::string& why) {
  Communicator& world = *s_.world;
  const int me = world.rank();
  const PoolMap next = pool_map_plan(loads_at(step), world.size(), map_.bp, &map_);
  auto is_fresh = [&](size_t i) { return std::find(fresh.begin(), fresh.end(), i) != fresh.end(); };
  auto source_of = [&](size_t i) {
    return is_fresh(i) ? static_cast<size_t>(s_.pool.index(s_.pool.llms[i].branch_from)) : i;
  };
  // Where an LLM's state is taken from on a rank that holds it, and the key it is kept
  // under (a spawned LLM's state is its trial's, not its parent's).
  auto group_of = [&](size_t i) -> ModelGroup* {
    auto p = pending_.find(i);
    return p != pending_.end() ? p->second.get() : groups_[source_of(i)].get();
  };
  auto key_of = [&](size_t i) { return pending_.count(i) ? size() + i : source_of(i); };
  // Phase 1: the states that must move, in pool order. Under bp 1 every rank that held
  // an LLM has all of it and copies locally; under bp > 1 the first replica's first rank
  // gathers the whole state and sends it to every other rank of the LLM's new group.
  const bool whole_copies = map_.bp == 1;
  // ZeRO: every group that may be captured first gathers its whole moments (collective
  // over its dp ranks; pool order, the same on every rank).
  std::vector<ModelGroup*> gathered;
  for (size_t i = 0; i < size(); ++i) {
    ModelGroup* g = group_of(i);
    if (!g || std::find(gathered.begin(), gathered.end(), g) != gathered.end()) continue;
    g->gather_optimizer_state();
    gathered.push_back(g);
  }
  std::map<size_t, CheckpointContents> captured, received;  // by key_of; by LLM
  auto capture_here = [&](size_t i) -> const CheckpointContents& {
    const size_t k = key_of(i);
    if (!captured.count(k)) captured.emplace(k, capture(*group_of(i), step));
    return captured.at(k);
  };
  for (size_t i = 0; i < size(); ++i) {
    if (next.units[i].empty()) continue;
    const size_t src = source_of(i);
    const std::vector<int> holders = map_.ranks(src);
    const int holder = holders.front();
    const int tag = kStateTag + 2 * static_cast<int>(i);
    if (!whole_copies && !captured.count(key_of(i)) &&
        contains(std::vector<int>(holders.begin(), holders.begin() + map_.bp), me)) {
      const std::vector<int> replica(holders.begin(), holders.begin() + map_.bp);
      CheckpointContents whole;
      if (me == holder) whole = capture(*group_of(i), step);
      gather_state(world, group_of(i), replica, me, kStateTag - 2, &whole);
      captured.emplace(key_of(i), std::move(whole));
    }
    for (int t : next.ranks(i)) {
      if (whole_copies ? contains(holders, t) : t == holder) continue;
      if (me == holder) {
        send_state(world, capture_here(i), t, tag);
      } else if (me == t) {
        received.emplace(i, recv_state(world, holder, tag, name(src)));
      }
    }
  }
  // Phase 2: the new groups on the new split of the world.
  const PoolMap old = map_;
  map_ = next;
  split_world();
  std::vector<std::unique_ptr<ModelGroup>> built(size());
  for (size_t i = 0; i < size(); ++i) {
    if (!map_.has(i, me)) continue;
    const size_t src = source_of(i);
    const CheckpointContents& from =
        (whole_copies ? old.has(src, me) : me == old.ranks(src).front()) ? capture_here(i) : received.at(i);
    built[i] = build(i, &from, from.llms.front().name);
  }
  captured.clear();
  for (ModelGroup* g : gathered) g->release_optimizer_state();
  groups_ = std::move(built);
  if (me == 0) {
    spdlog::info("pool: step {}: {}; map (epoch {}) {}, {} state(s) moved", step, why, map_.epoch,
                 map_.describe(names()), pool_map_moves(old, map_));
  }
}

GroupSetup Pool::setup_in(const PoolConfig& pool, size_t llm) const {
  GroupSetup g = s_.base;
  g.name = pool.llms[llm].name;
  g.train.global_batch = pool.llms[llm].global_batch;
  g.stream_seed = pool_stream_seed(s_.base.seed, g.name);
  g.phases.clear();
  if (pool.declared) {
    std::vector<std::string> domains;
    for (const auto& src : s_.base.data.sources) {
      if (src.train) domains.push_back(src.domain);
    }
    g.phases = pool_stream_phases(pool, llm, domains);
  }
  g.ranks = comm_;
  g.lead = comm_->rank() == 0;
  return g;
}

CheckpointContents Pool::state_of(size_t llm, int64_t step) {
  ModelGroup* g = groups_[llm].get();
  LOCALIST_CHECK(g, "pool: LLM '", name(llm), "' is not trained on rank ", s_.world->rank(),
                 " (only its ranks can take its state)");
  g->gather_optimizer_state();  // collective over the group (ZeRO chunks; under bp > 1 the FFN parts)
  CheckpointContents c;
  if (g->mesh().bp_size == 1) {
    c = capture(*g, step);
  } else {
    // A block-parallel rank holds its share: the replica's first rank gathers the whole
    // state and hands it to the others, who build from it what they hold (a trial's
    // groups are cut to their shares as they are built).
    Communicator& ranks = *g->mesh().ranks;
    const int bp = g->mesh().bp_size, first = g->mesh().dp_rank * bp, me = ranks.rank();
    std::vector<int> replica;
    for (int b = 0; b < bp; ++b) replica.push_back(first + b);
    if (me == first) c = capture(*g, step);
    gather_state(ranks, g, replica, me, kStateTag - 4, &c);
    for (int b = 1; b < bp; ++b) {
      if (me == first) send_state(ranks, c, replica[b], kStateTag - 6);
      if (me == replica[b]) c = recv_state(ranks, first, kStateTag - 6, g->setup().name);
    }
  }
  g->release_optimizer_state();
  return c;
}

void pool_add_spawned(PoolConfig& pool, const CheckpointContents& c) {
  for (const auto& l : c.llms) {
    if (!l.info.value("spawned", false)) continue;
    if (pool.index(l.name) >= 0) {
      throw ConfigError(c.dir + ": the coordinator spawned LLM '" + l.name + "' in this checkpoint" +
                        ", but the pool config also declares an LLM of that name (rename the declared one)");
    }
    PoolLlmConfig s;
    s.name = l.name;
    try {  // every field is needed to continue its stream: none has a default
      s.domains = l.info.at("domains").get<std::vector<std::string>>();
      s.branch_from = l.info.at("parent").get<std::string>();
      s.branch_step = l.info.at("branch_step").get<int64_t>();
      s.global_batch = l.info.at("global_batch").get<int64_t>();
    } catch (const nlohmann::json::exception& e) {
      throw Error(c.dir + ": the pool entry of spawned LLM '" + l.name + "' is malformed (" + e.what() +
                  "); the checkpoint is damaged: use an earlier one");
    }
    if (pool.index(s.branch_from) < 0 || s.domains.empty() || s.global_batch < 1) {
      throw Error(c.dir + ": the pool entry of spawned LLM '" + l.name + "' names parent '" + s.branch_from + "', " +
                  std::to_string(s.domains.size()) + " domain(s) and batch " + std::to_string(s.global_batch) +
                  "; the checkpoint is damaged: use an earlier one");
    }
    s.spawned = true;
    pool.llms.push_back(s);
  }
}

void Pool::add_spawned(const CheckpointContents& resumed) {
  pool_add_spawned(s_.pool, resumed);
  if (resumed.state.contains("pool_log")) {
    for (const auto& d : resumed.state.at("pool_log")) pool_log_.push_back(d);
  }
}

}  // namespace localist
