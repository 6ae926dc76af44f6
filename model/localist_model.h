// SPDX-License-Identifier: Apache-2.0
// localist_model.h: the localist transformer (DESIGN.md §1): token + learned position
// embeddings, pre-LayerNorm layers of block-local attention (M2 routing, M3 bias, M4
// gates) and a GELU FFN, a final LayerNorm and a head tied to the embedding. Block
// slots are preallocated up to k_max and switched on by a mask; only active blocks'
// heads are computed. λ (one value per layer) and rules are forward-time arguments.
// Limits: dropout acts on embeddings and residual branches, never on attention
// weights, so the weights reported and penalised are the ones used.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/anchors.h"
#include "model/model_config.h"

namespace localist {

// Rule effects for one batch (model/rules.h builds them); tensors on the model's device.
struct RuleMasks {
  at::Tensor route_block;    // (B,T) int64: slot id a token is routed to, -1 for none
  at::Tensor point_targets;  // (B,T,T) bool: explicit targets T_rule(i) (row i), or undefined
  at::Tensor point_block;    // (B,T) int64: the query points to every key of this slot, -1 for none
};

// Block parallelism (DESIGN.md §2): this rank computes the heads of `owned_slots` only,
// and its part of every FFN.
// `enter` is the identity forward whose backward sums the gradient over the group;
// `leave` sums over the group forward and is the identity backward (the conjugate
// pair of Megatron's tensor parallelism, with the block as the unit). The model stays
// ignorant of how the sums happen (parallel/block_parallel.h provides them).
struct BlockShard {
  std::vector<int64_t> owned_slots;
  // The FFN split the same way (Megatron's column-parallel first matrix, row-parallel
  // second): this rank's hidden units [ffn_begin, ffn_begin + ffn_size); -1: all of them.
  int64_t ffn_begin = 0, ffn_size = -1;
  bool lead = false;  // exactly one rank of the group: it alone adds the I_π term
  std::function<at::Tensor(const at::Tensor&)> enter;
  std::function<at::Tensor(const at::Tensor&)> leave;
  // Sequence parallelism (Megatron's, for what the blocks and the FFN do not split):
  // with seq_ranks > 1 this rank holds positions [T·seq_rank/seq_ranks, T·(seq_rank+1)/
  // seq_ranks) of the residual stream, embeddings, norms, head and loss. gather_seq
  // makes the whole sequence from every rank's part (backward: the summed gradient of
  // this rank's part); scatter_seq sums partial whole-sequence outputs over the group
  // and keeps this rank's part (backward: the whole gradient from the parts).
  int seq_rank = 0, seq_ranks = 1;
  std::function<at::Tensor(const at::Tensor&, int64_t T)> gather_seq;
  std::function<at::Tensor(const at::Tensor&)> scatter_seq;
  bool sequence_parallel() const { return seq_ranks > 1; }
  // Vocabulary parallelism (sequence parallel only): this rank embeds and scores the
  // vocabulary rows [vocab_begin, vocab_begin + vocab_size) for every position (-1: the
  // whole vocabulary, on its own positions). The embedding's partial sums are
  // reduce-scattered into each rank's positions (scatter_seq); the head's logits are
  // this rank's rows for the whole sequence, and vocab_cross_entropy gives the per-token
  // loss of such logits (B,T,rows) against targets (B,T) over the whole vocabulary.
  int64_t vocab_begin = 0, vocab_size = -1;
  std::function<at::Tensor(const at::Tensor& logits, const at::Tensor& targets, int64_t ignore)> vocab_cross_entropy;
  bool vocab_parallel() const { return vocab_size >= 0; }
  // This rank's positions of a sequence of T.
  std::pair<int64_t, int64_t> seq_range(int64_t T) const {
    return {T * seq_rank / seq_ranks, T * (seq_rank + 1) / seq_ranks};
  }
};

struct ForwardOptions {
  std::vector<double> dial;  // λ per layer, each in [0, 1]
  const RuleMasks* rules = nullptr;
  bool penalties = false;  // compute Ω and I_π per layer
  bool trace = false;      // keep attention, routing and logits (metrics, generate)
  // Keep each layer's routing only (pi, router, hard, gate: what every rank of a shard
  // computes whole): recruitment probes, also under block parallelism.
  bool routing_trace = false;
  const BlockShard* shard = nullptr;    // block parallel; null: every active block here
  bool checkpoint_activations = false;  // training: replay each layer in backward (model/layer_replay.h)
  // The fast kernels where they apply: attention's fused CPU kernel or SDPA on CUDA
  // (model/attention_kernel.h, never with trace) and the FFN's bias + GELU
  // (model/fused_ffn.h); false: the explicit reference path (tests compare them).
  bool fused = true;
};

struct LayerTrace {
  double dial = 0;
  at::Tensor alpha;         // (B,H,T,T) attention weights used (H = active heads)
  at::Tensor scores;        // (B,H,T,T) q.k / sqrt(d_h) before any bias
  at::Tensor logits;        // (B,H,T,T) post-bias z (-inf above the diagonal)
  at::Tensor pi;            // (B,T,K) routing over active blocks
  at::Tensor router;        // (B,T,d_a) router vectors r_i
  at::Tensor gate;          // (B,T,K) g_ik
  at::Tensor hard;          // (B,T) int64 argmax block, index into the active blocks
  at::Tensor rule_fired;    // (B,T) bool: a point rule fired for the query
  at::Tensor rule_targets;  // (B,T,T) bool: T_rule(i) where fired
};

struct ForwardResult {
  // (B,T,V); sequence parallel: (B,this rank's positions,V); vocabulary parallel: (B,T,this
  // rank's vocabulary rows), the shard's vocab_begin onward.
  at::Tensor logits;
  std::vector<at::Tensor> omega;        // per layer, scalar (when penalties)
  std::vector<at::Tensor> mutual_info;  // per layer, bits (when penalties)
  std::vector<LayerTrace> traces;       // per layer (when trace or routing_trace)
  at::Tensor active_blocks;             // (K) slot ids, ascending
  at::Tensor head_block;                // (H) index into active_blocks for each active head
};

class LocalistLayer : public torch::nn::Module {
 public:
  LocalistLayer(const ModelConfig& c, int64_t layer_index, uint64_t seed);
  at::Tensor ln1_w, ln1_b, qkv_w, qkv_b, out_w, out_b, router_w, ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b;

  // What the split tensors hold. Whole (the default): every slot at its own rows of
  // qkv_w, qkv_b, out_w and every FFN hidden unit. A block-parallel rank holds only its
  // share (parallel/block_parallel.h): slot_row[s] is slot s's row (-1: not held) and
  // fc_w, fc_b, proj_w hold hidden units [ffn_begin, ffn_begin + fc_w.size(0)).
  std::vector<int64_t> slot_row;  // empty: whole (slot s at row s)
  int64_t ffn_begin = 0;
  bool blocks_whole() const { return slot_row.empty(); }
  bool ffn_whole() const { return fc_w.size(0) == ffn_hidden_; }
  int64_t ffn_hidden() const { return ffn_hidden_; }
  // Slot's row in the block tensors; throws when this layer does not hold it.
  int64_t row(int64_t slot) const;
  bool holds(int64_t slot) const {
    return blocks_whole() || (slot >= 0 && slot < static_cast<int64_t>(slot_row.size()) && slot_row[slot] >= 0);
  }
  // slot_row as an int64 tensor on `device`, made once per hold() (every forward reads it).
  const at::Tensor& slot_rows_on(const at::Device& device) const;
  // Replaces the six split tensors (and the module's registered parameters) with ones
  // holding `slot_rows` (empty: whole) and the FFN units from ffn_first.
  void hold(const std::vector<at::Tensor>& split, std::vector<int64_t> slot_rows, int64_t ffn_first);
  // The six split tensors: qkv_w, qkv_b, out_w, fc_w, fc_b, proj_w.
  std::vector<at::Tensor> split_tensors() const { return {qkv_w, qkv_b, out_w, fc_w, fc_b, proj_w}; }

 private:
  int64_t ffn_hidden_ = 0;
  mutable at::Tensor slot_rows_index_;
};

struct ParameterShape {
  std::string name;  // as named_parameters() names it: "wte", "layer0.qkv_weight", ...
  std::vector<int64_t> shape;
};
// Every parameter of a whole model in registration order, without building it (the job
// planner counts bytes with it; a test holds it to the built model's parameters).
std::vector<ParameterShape> localist_parameter_shapes(const ModelConfig& c, int64_t vocab);

class LocalistModel : public torch::nn::Module {
 public:
  LocalistModel(const ModelConfig& config, int64_t vocab_size, uint64_t seed);

  ForwardResult forward(const at::Tensor& tokens, const ForwardOptions& options);

  const ModelConfig& config() const { return config_; }
  int64_t vocab_size() const { return vocab_size_; }
  const AnchorCode& anchor_code() const { return anchor_code_; }
  // Switches a block slot on or off (the mask; no parameter changes).
  void set_block_active(int64_t slot, bool active);
  std::vector<int64_t> active_slots() const;
  // Parameters for weight decay (matrices) and without (embeddings, norms, biases).
  std::vector<at::Tensor> decay_parameters();
  std::vector<at::Tensor> no_decay_parameters();
  // Whether t holds block slots (a layer's qkv_w, qkv_b, out_w), or is one of the FFN
  // tensors a block-parallel replica splits by hidden unit (fc_w, fc_b, proj_w).
  bool is_block_tensor(const at::Tensor& t) const;
  bool is_ffn_split_tensor(const at::Tensor& t) const;
  // The embedding's vocabulary rows held: all of them, or a block-parallel rank's
  // [vocab_begin, vocab_begin + wte.size(0)) (hold_vocab replaces wte and its parameter).
  bool vocab_whole() const { return wte.size(0) == vocab_size_; }
  int64_t vocab_begin = 0;
  void hold_vocab(const at::Tensor& rows, int64_t first);
  // How this model holds parameter p when it holds a part of it (a block-parallel rank's
  // FFN part or vocabulary rows): rows [begin, begin + p.size(dim)) of `whole` along dim.
  // Block tensors are held by slot rows instead (LocalistLayer::row); whole: nullopt.
  struct HeldPart {
    int64_t dim, begin, whole;
  };
  std::optional<HeldPart> held_part(const at::Tensor& p) const;
  int64_t parameter_count();

  at::Tensor wte, wpe, lnf_w, lnf_b, anchors, block_active;
  std::vector<std::shared_ptr<LocalistLayer>> layers;

 private:
  // One layer: x -> x + attention(ln1 x) -> + ffn(ln2 ·), dropout p on both branches;
  // T: the whole sequence's length (x holds this rank's positions when sequence parallel).
  at::Tensor layer_forward(const LocalistLayer& L, const at::Tensor& x, double dial, const ForwardOptions& o, double p,
                           int64_t T, ForwardResult& out) const;
  ModelConfig config_;
  int64_t vocab_size_;
  AnchorCode anchor_code_;
};

}  // namespace localist
