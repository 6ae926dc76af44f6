// SPDX-License-Identifier: Apache-2.0
// pool_config.h: the typed `pool:` section (DESIGN.md §1 M11): the LLMs of the pool —
// `main` and specialists, each owning domain tags and branched from a parent at a step —
// and the queries every part of the run asks of it: which LLMs exist at a step, which
// LLM a domain's documents go to, each LLM's training sources. Parsed and validated in
// launch/run_config.cpp; without a `pool:` section the pool is `main` alone.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace localist {

struct PoolLlmConfig {
  std::string name;                  // [a-z0-9_-], unique; "main" is the generalist
  std::vector<std::string> domains;  // the tags it owns (main: none, it owns the rest)
  std::string branch_from;           // the parent's name ("" for main)
  int64_t branch_step = 0;           // branched from the parent's state before this step
  int64_t global_batch = 0;          // sequences per step (the parent's when not given)
  bool spawned = false;              // added by the coordinator (pool.recruit), not declared
};

// Hierarchical recruitment (M11 steps 1-5): the coordinator spawns specialists by itself.
struct PoolRecruitConfig {
  bool enabled = false;
  int64_t interval = 100;        // steps between spawn rounds (a round at every positive multiple)
  int64_t n_try = 40;            // trial steps of the candidate specialist (and of the parent's control copy)
  int64_t specialist_batch = 0;  // sequences per step of a spawned specialist (0: main's batch)
  double horizon_tokens = 1e9;   // tokens the pool codes over the accounting horizon (N_d is d's share)
  double delta = 0.0;            // δ_LLM in bits
  double confidence_z = 2.0;     // decide on G − z·SE(G)
  int64_t max_llms = 4;          // the pool's size limit (c_0 = log2 max_llms)
  int64_t block_rejections = 2;  // M10 rejections for a domain that make it saturated
  int64_t heldout_windows = 32;  // held-out windows of the candidate domain scored by parent and trial
};

struct PoolConfig {
  bool declared = false;            // a `pool:` section was given
  std::vector<PoolLlmConfig> llms;  // main first, then in declaration order (a parent before its children)
  double generalist_replay = 0.1;   // share of main's batch drawn from the owned domains
  PoolRecruitConfig recruit;

  // A pool of main alone with this batch (no `pool:` section).
  static PoolConfig single(int64_t global_batch);
  int index(const std::string& name) const;  // -1 if absent
  // Whether LLM i exists at `step` (main always; a specialist from its branch step on).
  bool exists_at(size_t i, int64_t step) const { return i == 0 || llms[i].branch_step <= step; }
  std::vector<int> existing_at(int64_t step) const;
  // The LLM a domain's documents train at `step`: its owner once branched, else main.
  int owner_at(const std::string& domain, int64_t step) const;
  // The domains owned at `step` by existing specialists.
  std::vector<std::string> owned_at(int64_t step) const;
  // The steps at which the pool changes (branch steps), ascending and distinct.
  std::vector<int64_t> branch_steps() const;
  // Each LLM's load at `step` for the pool map: its tokens per step (every LLM has the
  // same architecture, so FLOPs per token are equal), 0 for one that does not exist yet.
  std::vector<double> loads_at(int64_t step, int64_t context) const;
};

}  // namespace localist
