// SPDX-License-Identifier: Apache-2.0
// job_plan.h: what a job will hold and send, without training (`localist plan`): the pool
// map (pool/pool_map.h, the same planner as training), each LLM's DP × BP mesh and block
// placement (parallel/block_map.h), and per rank the bytes of parameters, gradients,
// optimizer state and communication buffers — counted from the model's parameter shapes
// and the shard and ZeRO formulas training uses — plus activations (an estimate from
// each layer's saved tensors) and the bytes each rank sends per step, with times at a
// stated bandwidth. Limits: activations are an estimate (docs/results.md: how close);
// held bytes and the bytes handed to collectives are exact on CPU (fp32), wire bytes a
// ring's count; under bf16 autocast every activation is taken as 2 bytes (unchecked:
// no GPU has run it, and autocast keeps some, e.g. norm outputs, in fp32).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "model/model_config.h"
#include "pool/pool_config.h"
#include "trainer/train_config.h"

namespace localist {

struct PlanInput {
  ModelConfig model;
  TrainConfig train;
  PoolConfig pool;
  int64_t vocab = 0;
  int64_t block_parallel = 1, zero = 0;
  std::string vocab_parallel = "auto";
  double bucket_mb = 1.0;
  int ranks = 1, ranks_per_node = 1;
  int64_t step = 0;       // the pool as it exists before this step (branches up to it)
  bool cuda = false;      // GPU ranks (bf16 activations under train.precision auto)
  double memory = 0;      // bytes per rank (0: no limit, e.g. a CPU rank)
  double intra_gbps = 0;  // GB/s between ranks of one node, and between nodes
  double inter_gbps = 0;
};

struct RankPlan {
  int rank = 0, dp_rank = 0, bp_rank = 0;
  std::vector<int64_t> blocks;                                             // active block slots this rank owns
  int64_t parameters = 0, gradients = 0, optimizer = 0, sync_buffers = 0;  // bytes, as ModelGroup::memory counts
  int64_t activations = 0;                                                 // bytes of one micro-batch, estimated
  int64_t activations_checkpointed = 0;                                    // the same with activation checkpointing
  int64_t wire_bytes = 0;                                                  // sent per step: the two below
  int64_t wire_dp_bytes = 0;  // over the data-parallel ranks (gradient sync, ZeRO)
  int64_t wire_bp_bytes = 0;  // within the replica (its replicated gradients, sequence-parallel activations)
  double wire_ms = 0;         // at the plan's bandwidths (a node's, or the network's for a group across nodes)
  // Bytes handed to collectives per step (what LOCALIST_COUNT_COMM_BYTES counts): on the
  // LLM's whole group (ZeRO over it, the loss statistics; with bp 1 also the gradient
  // sync) and on its data-parallel groups (bp > 1: the gradient sync, the split ZeRO).
  // And within its replica (bp > 1: the sequence-parallel activations and the
  // replicated parameters' gradient sum).
  int64_t payload_group = 0, payload_dp = 0, payload_bp = 0;
  // What the rank holds at its peak (activations as configured): parameters, optimizer
  // state, buffers, and the larger of one micro-batch's activations with the gradients
  // then alive, and all gradients (backward's end). A step of one micro-batch starts
  // backward without the gradients torch's zero_grad dropped (`gradients_dropped`).
  // An asynchronous checkpoint's host copy (dp rank 0: parameters and whole moments)
  // adds to the peak; a periodic one lives on while the next steps train.
  int64_t total() const;
  int64_t gradients_dropped = 0;
  int64_t checkpoint_copy = 0;  // bytes, 0 without async_checkpoint or off dp rank 0
  bool checkpoint_overlaps = false;
  bool checkpointing = false;
};

struct LlmPlan {
  std::string name;
  std::vector<int> ranks;  // world ranks
  int dp = 1, bp = 1;
  bool vocab_parallel = false, spans_nodes = false;
  int64_t parameters_whole = 0;  // the whole model's parameter count
  std::vector<RankPlan> per_rank;
};

struct JobPlan {
  std::string pool_map;  // "main:0-1 drama:2-3"
  std::vector<LlmPlan> llms;
  int64_t peak_bytes = 0;  // the largest rank total
  bool fits = true;        // every rank within 90% of the memory (true with no limit)
};

// Throws ConfigError when the mesh does not fit the ranks (bp must divide each group).
JobPlan job_plan(const PlanInput& in);
nlohmann::json job_plan_json(const JobPlan& plan);
// The smallest single change (zero 1, activation checkpointing, a smaller micro-batch, a
// larger block_parallel) that makes a plan that does not fit fit; else the memory options
// together (with a smaller micro-batch if needed); "" when even that does not fit.
std::string job_plan_smallest_fix(const PlanInput& in);

}  // namespace localist
