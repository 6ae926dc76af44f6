// SPDX-License-Identifier: Apache-2.0
// pool_section.cpp: see pool_section.h.
#include "launch/pool_section.h"

#include <algorithm>
#include <limits>
#include <map>
#include <regex>
#include <set>

namespace localist {
namespace {

std::string joined(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

struct Entry {
  PoolLlmConfig llm;
  StrictMap map;
  bool has_batch = false;
};

// Distance to main along branch_from (a cycle or an unknown parent fails at its entry).
int depth_of(const std::vector<Entry>& entries, const std::map<std::string, size_t>& by_name, size_t i) {
  int depth = 0;
  for (size_t at = i; entries[at].llm.name != "main"; ++depth) {
    const auto& e = entries[at];
    const auto p = by_name.find(e.llm.branch_from);
    if (p == by_name.end()) {
      e.map.fail("branch_from", "unknown LLM '" + e.llm.branch_from + "' (the pool's LLMs are main and those listed)");
    }
    if (depth > static_cast<int>(entries.size())) {
      entries[i].map.fail("branch_from", "'" + entries[i].llm.name + "' is its own ancestor (a cycle of branch_from)");
    }
    at = p->second;
  }
  return depth;
}

// pool.generalist_replay and the spawn rounds' keys (pool.recruit and what tunes it).
void parse_recruit(StrictMap& m, const TrainConfig& train, PoolConfig& pool) {
  pool.generalist_replay = m.get_double("generalist_replay", pool.generalist_replay, 0.0, 0.99);
  PoolRecruitConfig& r = pool.recruit;
  r.enabled = m.get_bool("recruit", false);
  r.interval = m.get_int("interval", r.interval, 1, std::numeric_limits<int32_t>::max());
  r.n_try = m.get_int("n_try", r.n_try, 1, 1 << 20);
  r.specialist_batch = m.get_int("specialist_batch", train.global_batch, 1, std::numeric_limits<int32_t>::max());
  r.horizon_tokens = m.get_double("horizon_tokens", r.horizon_tokens, 1.0, 1e18);
  r.delta = m.get_double("delta", r.delta, 0.0, 1e300);
  r.confidence_z = m.get_double("confidence_z", r.confidence_z, 0.0, 10.0);
  r.max_llms = m.get_int("max_llms", r.max_llms, 2, 64);
  r.block_rejections = m.get_int("block_rejections", r.block_rejections, 1, 1000);
  r.heldout_windows = m.get_int("heldout_windows", r.heldout_windows, 2, 1 << 16);
}

// The llms list, each entry checked on its own: a unique name, known domains owned once,
// a parent named and a branch step inside the run; main's entry only adds its keys'
// checks to entries.front(). by_name: each LLM's index in the result.
std::vector<Entry> parse_llms(StrictMap& m, const PoolConfig& pool, const DataConfig& data, const TrainConfig& train,
                              std::map<std::string, size_t>& by_name) {
  std::set<std::string> domains;
  for (const auto& s : data.sources) {
    if (s.train) domains.insert(s.domain);
  }
  const std::regex name_ok("[a-z0-9_-]+");
  std::vector<Entry> entries;
  by_name = {{"main", 0}};
  entries.push_back({pool.llms.front(), m, false});
  std::map<std::string, std::string> owner;  // domain -> LLM
  bool main_listed = false;
  for (StrictMap s : m.get_map_list("llms")) {
    if (!s.has("name")) s.fail("", "each LLM of the pool needs a name");
    Entry e{{}, s, false};
    e.llm.name = s.get_string("name", "");
    if (!std::regex_match(e.llm.name, name_ok)) s.fail("name", "use lower-case letters, digits, '_' and '-' only");
    const bool is_main = e.llm.name == "main";
    if (is_main ? main_listed : by_name.count(e.llm.name) > 0) {
      s.fail("name", "LLM name '" + e.llm.name + "' is used twice");
    }
    main_listed |= is_main;
    e.llm.domains = s.get_string_list("domains", {});
    if (is_main) {
      if (!e.llm.domains.empty()) s.fail("domains", "main owns every domain no specialist owns; it lists none");
      for (const char* k : {"branch_from", "branch_step", "global_batch"}) {
        if (s.has(k)) {
          s.fail(k,
                 std::string("main is the root of the pool") +
                     (std::string(k) == "global_batch" ? ": its batch is train.global_batch" : ": it has no parent"));
        }
      }
      s.finish();
      entries.front().map = s;
      continue;
    }
    if (e.llm.domains.empty()) s.fail("domains", "a specialist owns at least one domain tag");
    for (const auto& d : e.llm.domains) {
      if (!domains.count(d)) {
        s.fail("domains", "unknown domain '" + d + "' (the training sources' domains: " + joined(domains) + ")");
      }
      if (owner.count(d))
        s.fail("domains", "domain '" + d + "' is owned twice (by " + owner[d] + " and " + e.llm.name + ")");
      owner[d] = e.llm.name;
    }
    if (!s.has("branch_from")) s.fail("", "specialist '" + e.llm.name + "' needs branch_from (an LLM's name)");
    if (!s.has("branch_step")) s.fail("", "specialist '" + e.llm.name + "' needs branch_step");
    e.llm.branch_from = s.get_string("branch_from", "");
    e.llm.branch_step = s.get_int("branch_step", 0, 0, std::numeric_limits<int64_t>::max() / 4);
    if (e.llm.branch_step >= train.steps) {
      s.fail("branch_step", "step " + std::to_string(e.llm.branch_step) + " is past the end of the run (train.steps " +
                                std::to_string(train.steps) + ")");
    }
    e.has_batch = s.has("global_batch");
    e.llm.global_batch = s.get_int("global_batch", 0, 1, std::numeric_limits<int32_t>::max());
    s.finish();
    by_name[e.llm.name] = entries.size();
    entries.push_back(e);
  }
  return entries;
}

// Parents known, acyclic and branched no later than their children; batches inherited;
// each specialist fed by its domains at its branch step; appended to pool.llms in
// branch order.
void add_in_branch_order(std::vector<Entry>& entries, const std::map<std::string, size_t>& by_name,
                         const DataConfig& data, PoolConfig& pool) {
  std::vector<std::pair<int64_t, std::pair<int, size_t>>> order;  // (branch step, depth, declaration)
  for (size_t i = 1; i < entries.size(); ++i) {
    const int depth = depth_of(entries, by_name, i);
    const Entry& parent = entries[by_name.at(entries[i].llm.branch_from)];
    if (parent.llm.name != "main" && parent.llm.branch_step > entries[i].llm.branch_step) {
      entries[i].map.fail("branch_step", "its parent '" + parent.llm.name + "' is branched only at step " +
                                             std::to_string(parent.llm.branch_step));
    }
    order.push_back({entries[i].llm.branch_step, {depth, i}});
  }
  std::sort(order.begin(), order.end());
  for (const auto& o : order) {
    Entry& e = entries[o.second.second];
    if (!e.has_batch) {
      const int p = pool.index(e.llm.branch_from);
      e.llm.global_batch = pool.llms.at(p).global_batch;  // the parent precedes it in this order
    }
    // Its data must exist when it is branched.
    bool fed = false;
    for (const auto& s : data.sources) {
      fed |= s.train && s.start_step <= e.llm.branch_step &&
             std::find(e.llm.domains.begin(), e.llm.domains.end(), s.domain) != e.llm.domains.end();
    }
    if (!fed) {
      e.map.fail("branch_step",
                 "no training source of its domains starts by step " + std::to_string(e.llm.branch_step));
    }
    pool.llms.push_back(e.llm);
  }
}

// Main must have data of its own at every step: checked where the sets change.
void check_main_keeps_data(StrictMap& m, const PoolConfig& pool, const DataConfig& data, const TrainConfig& train) {
  std::set<int64_t> points{0};
  for (const auto& l : pool.llms) points.insert(l.branch_step);
  for (const auto& s : data.sources) {
    if (s.start_step < train.steps) points.insert(s.start_step);
  }
  for (int64_t at : points) {
    const std::vector<std::string> owned = pool.owned_at(at);
    bool fed = false;
    for (const auto& s : data.sources) {
      fed |= s.train && s.start_step <= at && std::find(owned.begin(), owned.end(), s.domain) == owned.end();
    }
    if (!fed) {
      m.fail("llms", "from step " + std::to_string(at) +
                         " every training domain is owned by a specialist: main "
                         "would have nothing of its own to train on (leave it a domain)");
    }
  }
}

}  // namespace

PoolConfig pool_section_parse(StrictMap m, bool present, const DataConfig& data, const TrainConfig& train) {
  PoolConfig pool = PoolConfig::single(train.global_batch);
  if (!present) {
    m.finish();
    return pool;
  }
  pool.declared = true;
  parse_recruit(m, train, pool);
  const PoolRecruitConfig& r = pool.recruit;
  if (!m.has("llms") && !m.has("recruit")) {
    m.get_node("llms");
    m.finish();
    m.fail("",
           "pool.llms is required: list the specialists (name, domains, branch_from, branch_step), or set "
           "pool.recruit: true");
  }
  std::map<std::string, size_t> by_name;
  std::vector<Entry> entries = parse_llms(m, pool, data, train, by_name);
  m.finish();
  if (r.enabled && static_cast<int64_t>(entries.size()) > r.max_llms) {
    m.fail("max_llms", "the pool declares " + std::to_string(entries.size()) + " LLMs, more than max_llms " +
                           std::to_string(r.max_llms) + " (raise max_llms to leave room for spawns)");
  }
  add_in_branch_order(entries, by_name, data, pool);
  check_main_keeps_data(m, pool, data, train);
  return pool;
}

void pool_section_emit(YAML::Emitter& e, const PoolConfig& pool) {
  if (!pool.declared) return;
  e << YAML::Key << "pool" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "generalist_replay" << YAML::Value << pool.generalist_replay;
  const PoolRecruitConfig& r = pool.recruit;
  if (r.enabled) {  // (absent when off, so the effective config of a declared pool is unchanged)
    e << YAML::Key << "recruit" << YAML::Value << true;
    e << YAML::Key << "interval" << YAML::Value << r.interval << YAML::Key << "n_try" << YAML::Value << r.n_try;
    e << YAML::Key << "specialist_batch" << YAML::Value << r.specialist_batch;
    e << YAML::Key << "horizon_tokens" << YAML::Value << r.horizon_tokens << YAML::Key << "delta" << YAML::Value
      << r.delta << YAML::Key << "confidence_z" << YAML::Value << r.confidence_z;
    e << YAML::Key << "max_llms" << YAML::Value << r.max_llms << YAML::Key << "block_rejections" << YAML::Value
      << r.block_rejections << YAML::Key << "heldout_windows" << YAML::Value << r.heldout_windows;
  }
  e << YAML::Key << "llms" << YAML::Value << YAML::BeginSeq;
  for (size_t i = 1; i < pool.llms.size(); ++i) {
    const auto& l = pool.llms[i];
    e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << l.name;
    e << YAML::Key << "domains" << YAML::Value << YAML::Flow << l.domains;
    e << YAML::Key << "branch_from" << YAML::Value << l.branch_from;
    e << YAML::Key << "branch_step" << YAML::Value << l.branch_step;
    e << YAML::Key << "global_batch" << YAML::Value << l.global_batch << YAML::EndMap;
  }
  e << YAML::EndSeq << YAML::EndMap;
}

}  // namespace localist
