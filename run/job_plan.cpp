// SPDX-License-Identifier: Apache-2.0
// job_plan.cpp: see job_plan.h. Parameters, gradients and optimizer state follow
// ModelGroup::make_model / make_optimizers / make_gradient_sync rule for rule; a test
// holds them to a real run's memory records (tests/e2e/test_cli.cpp, Cli.PlanEquals…).
#include "run/job_plan.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

#include "core/error.h"
#include "data/sampler.h"
#include "model/localist_model.h"
#include "parallel/block_map.h"
#include "parallel/block_parallel.h"
#include "parallel/zero_optimizer.h"
#include "pool/pool_map.h"

namespace localist {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Index of a layer's split tensor in block_parallel_split_shapes (0-2 blocks, 3-5 FFN), or -1.
int split_index(const std::string& name) {
  const char* names[6] = {".qkv_weight", ".qkv_bias", ".out_weight", ".fc_weight", ".fc_bias", ".proj_weight"};
  for (int i = 0; i < 6; ++i) {
    if (ends_with(name, names[i])) return i;
  }
  return -1;
}

int64_t numel(const std::vector<int64_t>& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t(1), std::multiplies<int64_t>());
}

// Bytes a rank sends in a ring all-reduce of `bytes` over n ranks (reduce-scatter + all-gather).
double ring_all_reduce(double bytes, int n) { return n > 1 ? 2.0 * (n - 1) / n * bytes : 0.0; }

struct Counts {
  int64_t replicated = 0, split = 0;  // elements this rank holds
  int64_t adamw = 0, synced = 0;      // elements in torch's AdamW, in the gradient sync
};

// The rank's parameters as ModelGroup holds them: block tensors (always "split"), the
// FFN's (split under bp > 1) and the embedding's rows (vocabulary parallel) cut to its share.
Counts count_parameters(const PlanInput& in, const LlmPlan& llm, int bp_rank) {
  const ModelConfig& c = in.model;
  const int bp = llm.bp, dp = llm.dp;
  const auto [f0, f1] = block_parallel_ffn_range(c.ffn_mult * c.d_model, bp_rank, bp);
  const auto [v0, v1] = block_parallel_ffn_range(in.vocab, bp_rank, bp);
  const auto share = block_parallel_split_shapes(c, block_map_capacity(c.k_max, bp), f1 - f0);
  const ZeroSharding zero(in.zero, bp * dp, dp);
  Counts n;
  for (const ParameterShape& p : localist_parameter_shapes(c, in.vocab)) {
    const int i = split_index(p.name);
    const bool block = i >= 0 && i < 3, ffn = i >= 3, vocab = p.name == "wte" && llm.vocab_parallel;
    int64_t k = numel(p.shape);
    if (bp > 1 && i >= 0) k = numel(share[i]);
    if (vocab) k = (v1 - v0) * c.d_model;
    const bool split = block || (bp > 1 && ffn) || vocab;
    (split ? n.split : n.replicated) += k;
    if (zero.in_torch_adamw(split)) n.adamw += k;
    if (zero.synced(split, dp)) n.synced += k;
  }
  return n;
}

// bf16 autocast keeps activations in 2 bytes (train.precision auto: on CUDA).
double activation_element_bytes(const PlanInput& in) {
  return in.train.precision == "bf16" || (in.train.precision == "auto" && in.cuda) ? 2.0 : 4.0;
}

// Activation bytes of one micro-batch (`rows` sequences) on a rank, per token of the
// whole sequence (measured tensor by tensor on CPU, docs/results.md). A layer keeps its
// two norm outputs at full length (gathered under bp > 1, where the local ones are freed),
// its residual sum and output at the rank's positions, for its own heads q, k, v, the
// output and the gated output (5 per head unit) with a log-sum-exp and Ω's per-block
// coefficients per head, the router's anchor scores, shares and key biases, and the FFN's
// pre-activation and GELU output of its own units. The top keeps the embedding and final
// norm outputs and the logits with their log-softmax (fp32), and backward's largest
// transient. Checkpointing keeps each layer's input and one replayed layer.
std::pair<int64_t, int64_t> activation_bytes(const PlanInput& in, const LlmPlan& llm, int64_t own_blocks, int bp_rank,
                                             int64_t active, int64_t rows) {
  const ModelConfig& c = in.model;
  const double el = activation_element_bytes(in);
  const double bp = llm.bp, d = c.d_model, K = static_cast<double>(active);
  const double tok = static_cast<double>(std::min(in.train.micro_batch, std::max<int64_t>(rows, 1)) * c.context);
  const double heads = static_cast<double>(own_blocks * c.heads_per_block), a_own = heads * c.head_dim;
  const auto [f0, f1] = block_parallel_ffn_range(c.ffn_mult * c.d_model, bp_rank, llm.bp);
  const auto [v0, v1] = block_parallel_ffn_range(in.vocab, bp_rank, llm.bp);
  const double drop = c.dropout > 0 ? 1.0 : 0.0;  // each dropout keeps its input and mask
  const double layer = el * tok *
                       (2 * d + (2 + 4 * drop) * d / bp + 5 * a_own + heads * (1 + K) +
                        static_cast<double>(c.anchor_dim) + 2 * K + 2 * static_cast<double>(f1 - f0));
  // Vocabulary parallel: the rank's rows' logits for the whole sequence, from the
  // gathered final norm output. Backward's largest transient: the logits' two gradients,
  // or under bp > 1 a layer's full-length gradients of its gathered input and output.
  const double logits = llm.vocab_parallel ? 4.0 * 2 * tok * static_cast<double>(v1 - v0) + el * tok * d
                                           : 4.0 * 2 * tok / bp * static_cast<double>(in.vocab);
  const double transient = std::max(logits, llm.bp > 1 ? el * tok * 2 * d : 0.0);
  const double top = el * tok / bp * (2 + 2 * drop) * d + logits + transient;
  const double L = static_cast<double>(c.n_layers);
  return {static_cast<int64_t>(L * layer + top), static_cast<int64_t>(L * el * tok / bp * d + layer + top)};
}

// What a block-parallel rank hands to its replica's collectives in a step of `rows`
// sequences (block_shard.cpp): per micro-batch and layer, the attention's and the FFN's
// input gathered (each rank its positions) and partial output reduce-scattered (the whole
// sequence), and both again backward (and forward once more when activation checkpointing
// replays the layer); around a vocabulary-parallel embedding and head the same once more,
// plus the loss's three per-token reductions. Parts are padded to the
// longest when the context does not divide by bp.
struct Traffic {
  int64_t payload = 0;  // bytes handed to the collectives
  double wire = 0;      // bytes a ring sends: (n-1) parts per gather, (n-1)/n of a reduce-scatter
};
Traffic sequence_parallel_traffic(const PlanInput& in, const LlmPlan& llm, int64_t rows) {
  const int64_t n = llm.bp, T = in.model.context, d = in.model.d_model, longest = (T + n - 1) / n;
  const double el = activation_element_bytes(in);
  Traffic t;
  for (int64_t first = 0; first < rows; first += in.train.micro_batch) {
    const int64_t B = std::min(in.train.micro_batch, rows - first);
    const double part = el * static_cast<double>(B * longest * d);
    const double whole = el * static_cast<double>(T % n == 0 ? B * T * d : n * B * longest * d);
    // Each pair: a gather and a reduce-scatter forward, the same two backward; a layer
    // replayed under activation checkpointing runs its forward pair again.
    const double layers = 2.0 * static_cast<double>(in.model.n_layers);
    const double passes = layers * (in.train.activation_checkpointing ? 3 : 2) + (llm.vocab_parallel ? 2.0 : 0.0);
    t.payload += static_cast<int64_t>(passes * (part + whole)) + (llm.vocab_parallel ? 3 * 4 * B * T : 0);
    t.wire += passes * (static_cast<double>(n - 1) * part + static_cast<double>(n - 1) / n * whole) +
              (llm.vocab_parallel ? ring_all_reduce(3.0 * 4 * B * T, llm.bp) : 0.0);
  }
  return t;
}

RankPlan rank_plan(const PlanInput& in, const LlmPlan& llm, int group_rank, const BlockMap& map, int64_t global_batch) {
  RankPlan r;
  r.rank = llm.ranks[group_rank];
  r.dp_rank = group_rank / llm.bp, r.bp_rank = group_rank % llm.bp;
  r.blocks = llm.bp > 1 ? map.owned_by(r.bp_rank) : map.owned_by(0);
  const Counts n = count_parameters(in, llm, r.bp_rank);
  const int group = llm.bp * llm.dp;
  const ZeroSharding zero(in.zero, group, llm.dp);
  const bool sharded = zero.replicated, split_sharded = zero.split;
  r.parameters = r.gradients = 4 * (n.replicated + n.split);
  r.optimizer = 8 * n.adamw;
  // Sent per step: over the data-parallel ranks (gradients, ZeRO) and within a replica
  // (its replicated parameters' gradients, the sequence-parallel activations).
  double dp_wire = ring_all_reduce(4.0 * n.synced, llm.dp), bp_wire = 0;
  if (sharded) {
    const int64_t chunk = zero_chunk_numel(n.replicated, group);
    r.optimizer += 8 * chunk, r.sync_buffers += 4 * (chunk * group + chunk);
    dp_wire += 2.0 * (group - 1) * chunk * 4;  // reduce-scatter + all-gather over the group
  }
  if (split_sharded) {
    const int64_t chunk = zero_chunk_numel(n.split, llm.dp);
    r.optimizer += 8 * chunk, r.sync_buffers += 4 * (chunk * llm.dp + chunk);
    dp_wire += 2.0 * (llm.dp - 1) * chunk * 4;
  }
  r.sync_buffers += 4 * n.synced;
  // Payloads: the gradient sync's buckets, ZeRO's reduce-scatter (the padded flat vector)
  // and all-gather (the chunk), the loss statistics (4 + 1 doubles) and ZeRO's norm (1).
  int64_t& dp_payload = llm.bp > 1 ? r.payload_dp : r.payload_group;  // bp 1: dp is the group
  dp_payload += 4 * n.synced;
  if (group > 1) r.payload_group += 40;
  if (sharded) {
    const int64_t chunk = zero_chunk_numel(n.replicated, group);
    r.payload_group += 4 * (chunk * group + chunk) + 8;  // and ZeRO's share of the norm
  }
  if (split_sharded) {
    const int64_t chunk = zero_chunk_numel(n.split, llm.dp);
    dp_payload += 4 * (chunk * llm.dp + chunk);
  }
  if (llm.bp > 1 && !sharded) bp_wire += ring_all_reduce(4.0 * n.replicated, llm.bp);
  const auto [row0, row1] = batch_slice(global_batch, r.dp_rank, llm.dp);
  const int64_t active = std::count(map.active.begin(), map.active.end(), uint8_t{1});
  // torch's AdamW drops its parameters' gradients at zero_grad (ZeRO's keep theirs); a
  // second micro-batch's backward finds them allocated again.
  const int64_t rows = row1 - row0, micro_batches = (rows + in.train.micro_batch - 1) / in.train.micro_batch;
  // (Checkpointing peaks in a replay, after the layers above have their gradients.)
  if (micro_batches <= 1 && !in.train.activation_checkpointing) r.gradients_dropped = 4 * n.adamw;
  if (in.train.async_checkpoint && r.dp_rank == 0) {
    r.checkpoint_copy = 3 * r.parameters;  // parameters, the two moments whole
    r.checkpoint_overlaps = in.train.checkpoint_every > 0 && in.train.checkpoint_every < in.train.steps;
  }
  std::tie(r.activations, r.activations_checkpointed) =
      activation_bytes(in, llm, static_cast<int64_t>(r.blocks.size()), r.bp_rank, active, rows);
  r.checkpointing = in.train.activation_checkpointing;
  if (llm.bp > 1) {
    const Traffic t = sequence_parallel_traffic(in, llm, rows);
    r.payload_bp += t.payload + (sharded ? 0 : 4 * n.replicated) + 8;  // + the replicated sum, the norm's part
    bp_wire += t.wire;
  }
  r.wire_dp_bytes = static_cast<int64_t>(dp_wire), r.wire_bp_bytes = static_cast<int64_t>(bp_wire);
  r.wire_bytes = r.wire_dp_bytes + r.wire_bp_bytes;
  // A group on one node moves at the node's bandwidth, one across nodes at the network's.
  const int per_node = std::max(1, in.ranks_per_node);
  const int replica0 = llm.ranks[r.dp_rank * llm.bp], replica1 = llm.ranks[r.dp_rank * llm.bp + llm.bp - 1];
  const double bp_gbps = replica0 / per_node == replica1 / per_node ? in.intra_gbps : in.inter_gbps;
  const double dp_gbps = llm.spans_nodes ? in.inter_gbps : in.intra_gbps;
  r.wire_ms =
      (dp_gbps > 0 ? dp_wire / (dp_gbps * 1e9) * 1e3 : 0.0) + (bp_gbps > 0 ? bp_wire / (bp_gbps * 1e9) * 1e3 : 0.0);
  return r;
}

// The pool map in force before `step`: planned at the start and re-planned at every
// branch up to it, as Pool does.
PoolMap plan_pool_map(const PlanInput& in) {
  PoolMap map =
      pool_map_plan(in.pool.loads_at(0, in.model.context), in.ranks, static_cast<int>(in.block_parallel), nullptr);
  for (int64_t b : in.pool.branch_steps()) {
    if (b <= 0 || b > in.step) continue;
    const PoolMap next =
        pool_map_plan(in.pool.loads_at(b, in.model.context), in.ranks, static_cast<int>(in.block_parallel), &map);
    map = next;
  }
  return map;
}

}  // namespace

int64_t RankPlan::total() const {
  const int64_t act = checkpointing ? activations_checkpointed : activations;
  const int64_t training = act + gradients - gradients_dropped + (checkpoint_overlaps ? checkpoint_copy : 0);
  return parameters + optimizer + sync_buffers + std::max(training, gradients + checkpoint_copy);
}

JobPlan job_plan(const PlanInput& in) {
  if (in.ranks < 1) throw ConfigError("plan: --ranks must be at least 1");
  if (in.ranks % in.block_parallel != 0) {
    throw ConfigError("plan: distributed.block_parallel " + std::to_string(in.block_parallel) + " does not divide " +
                      std::to_string(in.ranks) + " ranks");
  }
  JobPlan plan;
  const PoolMap map = plan_pool_map(in);
  std::vector<std::string> names;
  for (const auto& l : in.pool.llms) names.push_back(l.name);
  plan.pool_map = map.describe(names);
  std::vector<uint8_t> active(in.model.k_max, 0);
  for (int64_t k = 0; k < in.model.k_initial; ++k) active[k] = 1;
  for (size_t i = 0; i < in.pool.llms.size(); ++i) {
    if (map.units[i].empty()) continue;
    LlmPlan llm;
    llm.name = in.pool.llms[i].name;
    llm.ranks = map.ranks(i);
    llm.bp = static_cast<int>(in.block_parallel);
    llm.dp = static_cast<int>(llm.ranks.size()) / llm.bp;
    llm.vocab_parallel =
        llm.bp > 1 && block_parallel_splits_vocab(in.vocab_parallel, in.vocab, in.train.micro_batch * in.model.context);
    const int per_node = std::max(1, in.ranks_per_node);
    llm.spans_nodes = llm.ranks.front() / per_node != llm.ranks.back() / per_node;
    for (const ParameterShape& p : localist_parameter_shapes(in.model, in.vocab))
      llm.parameters_whole += numel(p.shape);
    const BlockMap blocks = block_map_initial(active, llm.bp);
    for (int g = 0; g < static_cast<int>(llm.ranks.size()); ++g) {
      llm.per_rank.push_back(rank_plan(in, llm, g, blocks, in.pool.llms[i].global_batch));
    }
    plan.llms.push_back(std::move(llm));
  }
  // A rank that trains several LLMs (a shared unit) holds all of them.
  std::vector<int64_t> per_world_rank(in.ranks, 0);
  for (const LlmPlan& l : plan.llms) {
    for (const RankPlan& r : l.per_rank) per_world_rank[r.rank] += r.total();
  }
  plan.peak_bytes = *std::max_element(per_world_rank.begin(), per_world_rank.end());
  plan.fits = in.memory <= 0 || static_cast<double>(plan.peak_bytes) <= 0.9 * in.memory;
  return plan;
}

nlohmann::json job_plan_json(const JobPlan& plan) {
  nlohmann::json llms = nlohmann::json::array();
  for (const LlmPlan& l : plan.llms) {
    nlohmann::json ranks = nlohmann::json::array();
    for (const RankPlan& r : l.per_rank) {
      ranks.push_back(
          {{"rank", r.rank},
           {"dp_rank", r.dp_rank},
           {"bp_rank", r.bp_rank},
           {"blocks", r.blocks},
           {"parameter_bytes", r.parameters},
           {"gradient_bytes", r.gradients},
           {"optimizer_bytes", r.optimizer},
           {"sync_buffer_bytes", r.sync_buffers},
           {"activation_bytes", r.activations},
           {"activation_bytes_checkpointed", r.activations_checkpointed},
           {"total_bytes", r.total()},
           {"wire_bytes_per_step", r.wire_bytes},
           {"wire_dp_bytes_per_step", r.wire_dp_bytes},
           {"payload_bytes_per_step", {{"group", r.payload_group}, {"dp", r.payload_dp}, {"bp", r.payload_bp}}},
           {"wire_bp_bytes_per_step", r.wire_bp_bytes},
           {"wire_ms_per_step", r.wire_ms}});
    }
    llms.push_back({{"name", l.name},
                    {"ranks", l.ranks},
                    {"dp", l.dp},
                    {"bp", l.bp},
                    {"vocab_parallel", l.vocab_parallel},
                    {"spans_nodes", l.spans_nodes},
                    {"parameters", l.parameters_whole},
                    {"per_rank", ranks}});
  }
  return {{"pool_map", plan.pool_map}, {"llms", llms}, {"peak_bytes", plan.peak_bytes}, {"fits", plan.fits}};
}

std::string job_plan_smallest_fix(const PlanInput& in) {
  auto fits = [](const PlanInput& p) {
    try {
      return job_plan(p).fits;
    } catch (const ConfigError&) {
      return false;
    }
  };
  if (in.zero == 0 && in.ranks > 1) {
    PlanInput p = in;
    p.zero = 1;
    if (fits(p)) return "distributed.zero: 1";
  }
  if (!in.train.activation_checkpointing) {
    PlanInput p = in;
    p.train.activation_checkpointing = true;
    if (fits(p)) return "train.activation_checkpointing: true";
  }
  for (int64_t mb = in.train.micro_batch / 2; mb >= 1; mb /= 2) {
    PlanInput p = in;
    p.train.micro_batch = mb;
    if (fits(p)) return "train.micro_batch: " + std::to_string(mb);
  }
  for (int64_t bp = in.block_parallel * 2; bp <= in.model.k_max && bp <= in.ranks; bp *= 2) {
    PlanInput p = in;
    p.block_parallel = bp;
    if (fits(p)) return "distributed.block_parallel: " + std::to_string(bp);
  }
  // No single change: the memory options together, then the micro-batch down to 1.
  PlanInput p = in;
  std::string with;
  if (in.zero == 0 && in.ranks > 1) p.zero = 1, with = "distributed.zero: 1";
  if (!in.train.activation_checkpointing) {
    p.train.activation_checkpointing = true;
    with += std::string(with.empty() ? "" : " and ") + "train.activation_checkpointing: true";
  }
  for (int64_t mb = in.train.micro_batch; mb >= 1; mb /= 2) {
    p.train.micro_batch = mb;
    if (fits(p)) return with + (mb < in.train.micro_batch ? " and train.micro_batch: " + std::to_string(mb) : "");
  }
  return "";
}

}  // namespace localist
