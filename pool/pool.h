// SPDX-License-Identifier: Apache-2.0
// pool.h: the pool of LLMs of a run (DESIGN.md §1 M11, §2 pool map): main and the
// specialists of the `pool:` section, each trained by its own model group on the ranks
// the pool map gives it, with its own batch stream (a pure function of seed, LLM name,
// step and index over its own sources). At a branch step the specialist is copied from
// its parent (parameters, buffers, block map, optimizer moments, recruiter state), the
// map is re-planned by load, and every LLM's state moves point to point to the ranks
// that lack it; nothing else changes, so each LLM's losses do not depend on the map.
// Without a `pool:` section the pool is main on every rank, exactly the one-group run.
// Under block parallelism a moved state is first gathered on its first replica's first
// rank (a block's moments live only on its owner), then sent whole.
// Limits: every group on a rank holds its own copy of the training shards.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "pool/pool_config.h"
#include "pool/pool_map.h"
#include "trainer/model_group.h"

namespace localist {

struct CheckpointContents;

struct PoolSetup {
  PoolConfig pool;
  GroupSetup base;  // what every LLM shares (model, data, train, recruitment, bp, device); name and ranks set per LLM
  std::shared_ptr<Communicator> world;
};

class Pool {
 public:
  // The LLMs that exist before `start_step`, from `resumed` when given (it must hold
  // exactly those); the map is the checkpoint's on the same world, else re-planned.
  Pool(PoolSetup setup, int64_t start_step, const CheckpointContents* resumed);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Collective over the world, at the boundary before `step`: branches the specialists
  // whose branch step it is, re-plans the map and moves states. Returns whether it did.
  bool advance_to(int64_t step);

  // Collective over the world, at the boundary before `step`: a spawned specialist joins
  // (M11 step 4). Its state is `trial` on the parent's ranks (null on the others, which
  // receive it); the map is re-planned and states move as at a branch step.
  void admit(int64_t step, PoolLlmConfig llm, std::unique_ptr<ModelGroup> trial);
  // The setup of LLM `llm` of `pool` (this pool's config or one with a candidate
  // appended) on this rank's current group of ranks.
  GroupSetup setup_in(const PoolConfig& pool, size_t llm) const;
  // LLM `llm`'s whole state, as a checkpoint holds it, on every rank of its group
  // (collective over the group: under bp > 1 each replica gathers its ranks' shares).
  CheckpointContents state_of(size_t llm, int64_t step);
  ModelGroup* group(size_t llm) const { return groups_[llm].get(); }  // null where this rank does not train it
  Communicator& world() const { return *s_.world; }
  // The spawn decisions so far (M11 step 5), in order; kept in checkpoints (`pool_log`).
  const std::vector<nlohmann::json>& pool_log() const { return pool_log_; }
  void log_decision(const nlohmann::json& decision) { pool_log_.push_back(decision); }

  std::vector<ModelGroup*> local_groups() const;  // this rank's groups, pool order
  const PoolConfig& config() const { return s_.pool; }
  const PoolMap& map() const { return map_; }
  size_t size() const { return s_.pool.llms.size(); }
  const std::string& name(size_t llm) const { return s_.pool.llms[llm].name; }
  std::vector<std::string> names() const;
  // Tokens per step × FLOPs per token of each LLM existing at `step` (0 for the others).
  std::vector<double> loads_at(int64_t step) const;
  // Tokens every LLM has trained on before `step` (main from 0, a specialist from its branch).
  int64_t tokens_before(int64_t step) const;

 private:
  GroupSetup setup_for(size_t llm) const;
  // A resumed checkpoint must hold exactly the LLMs that exist before start_step, each as
  // the config declares it; a config may add specialists branching later.
  void check_resumed_pool(const CheckpointContents& c, const std::vector<std::string>& expected,
                          int64_t start_step) const;
  void split_world();
  // The specialists in `resumed` that the coordinator spawned, appended to the config.
  void add_spawned(const CheckpointContents& resumed);
  // Re-plans the map for the LLMs existing at `step` and moves states (`fresh`: the LLMs
  // new at this step, copied from their parent or from pending_).
  void replan(int64_t step, const std::vector<size_t>& fresh, const std::string& why);
  std::unique_ptr<ModelGroup> build(size_t llm, const CheckpointContents* from, const std::string& source);

  PoolSetup s_;
  PoolMap map_;
  std::shared_ptr<Communicator> comm_;                     // this rank's group of ranks (the world without a pool)
  std::vector<std::unique_ptr<ModelGroup>> groups_;        // by LLM; null where this rank does not train it
  std::map<size_t, std::unique_ptr<ModelGroup>> pending_;  // during admit: the spawned LLM's trial state
  std::vector<nlohmann::json> pool_log_;
};

// The specialists the coordinator spawned (pool_json entries marked `spawned`), appended
// to `pool` in the checkpoint's order; a declared LLM of the same name is a ConfigError.
void pool_add_spawned(PoolConfig& pool, const CheckpointContents& c);

// The key of an LLM's batch and dropout streams: the run's seed for main (so a run
// without a pool is unchanged), a mix of the seed and the name for a specialist.
uint64_t pool_stream_seed(uint64_t seed, const std::string& llm);
// An LLM's share of the training sources over the run (GlobalSampler phases): main
// everything not owned by an existing specialist plus a replay share of what is; a
// specialist its domains from its branch step.
std::vector<StreamPhase> pool_stream_phases(const PoolConfig& pool, size_t llm,
                                            const std::vector<std::string>& domains);

}  // namespace localist
