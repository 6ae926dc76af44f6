// SPDX-License-Identifier: Apache-2.0
// block_attention.cpp: see block_attention.h. Shapes: B sequences, T positions, d width,
// K active blocks, H = K * heads_per_block computed heads of width d_h.
#include "model/block_attention.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "model/cpu_capability.h"
#include "model/fused_attention.h"
#include "model/penalty.h"
#include "model/routing.h"
#include "model/sdpa_attention.h"

namespace localist {

namespace {

// M6's point-rule targets T_rule(i) of every query (B, T, T): the rules' token targets and
// the keys routed to a query's target block, causal.
at::Tensor point_rule_targets(const RuleMasks& rules, const at::Tensor& slot_map, const at::Tensor& hard, int64_t B,
                              int64_t T, const at::TensorOptions& options) {
  at::Tensor targets = at::zeros({B, T, T}, options.dtype(at::kBool));
  if (rules.point_targets.defined()) targets = targets | rules.point_targets;
  if (rules.point_block.defined()) {
    const auto pb = block_map_slots(rules.point_block, slot_map).unsqueeze(2);  // (B,T,1) query's target block
    targets = targets | (pb.ge(0) & hard.unsqueeze(1).eq(pb));
  }
  return targets & at::ones({T, T}, targets.options()).tril();
}

// The explicit (unfused) attention of M3: scores, rule bonus, causal softmax, heads.
struct ExplicitAttention {
  at::Tensor heads;             // (B,T,H,d_h), not yet gated
  at::Tensor alpha, z, scores;  // (B,H,T,T): weights, logits, raw scores (traces)
};

ExplicitAttention explicit_attention(const at::Tensor& qkv_flat, int64_t B, int64_t T, int64_t H, int64_t dh,
                                     double scale, double dial, double rho, const at::Tensor& targets, bool trace,
                                     const at::Tensor& key_bias) {
  ExplicitAttention e;
  // unbind (not three selects): its backward is one stack, not three zero-filled copies.
  const auto qkv = qkv_flat.view({B, T, 3, H, dh}).permute({2, 0, 3, 1, 4}).unbind(0);
  // 1/sqrt(d_h) is applied to q (B,H,T,d_h) rather than to the (B,H,T,T) scores.
  const auto q = qkv[0] * scale;
  const auto &k = qkv[1], &v = qkv[2];
  // M3: z_ij = s_ij - dial * gamma * (1 - pi_jk) + rho * [j in T_rule(i)], causal.
  // NOTE(bias-in-matmul): the routing bias depends on the key only, so it rides in the
  // score matmul as one extra column: [q_i, 1] . [k_j, beta_j]. No (B,H,T,T) pass is
  // spent on it forward, and its gradient comes out of the matmul's backward.
  if (dial != 0.0) {
    const auto beta = key_bias.permute({0, 2, 1}).unsqueeze(-1);
    const auto q1 = at::cat({q, at::ones_like(beta)}, -1);  // (B,H,T,d_h+1)
    const auto k1 = at::cat({k, beta}, -1);
    e.z = at::matmul(q1, k1.transpose(-2, -1));
    if (trace) e.scores = at::matmul(q, k.transpose(-2, -1)).detach();
  } else {
    e.z = at::matmul(q, k.transpose(-2, -1));
    e.scores = e.z;
  }
  if (targets.defined()) e.z = e.z + rho * targets.unsqueeze(1).to(e.z.scalar_type());
  e.z = e.z.masked_fill(at::ones({T, T}, qkv_flat.options().dtype(at::kBool)).triu(1),
                        -std::numeric_limits<double>::infinity());
  e.alpha = at::softmax(e.z, -1);
  e.heads = at::matmul(e.alpha, v).transpose(1, 2);  // (B,T,H,d_h)
  return e;
}

// What a traced layer shows: routing always; with `full` (evaluation, the report) also
// the attention weights, scores, logits and the rules that fired.
LayerTrace layer_trace(double dial, const Routing& rt, const at::Tensor& gate, bool full, const at::Tensor& alpha,
                       const at::Tensor& scores, const at::Tensor& z, const at::Tensor& fired,
                       const at::Tensor& targets, int64_t B, int64_t T, const at::TensorOptions& options) {
  LayerTrace t;
  t.dial = dial;
  t.pi = rt.pi;
  t.router = rt.router.defined() ? rt.router.detach() : rt.router;
  t.gate = gate;
  t.hard = rt.hard;
  if (full) {
    t.alpha = alpha;
    t.scores = scores;
    t.logits = z;
    t.rule_fired = fired.defined() ? fired : at::zeros({B, T}, options.dtype(at::kBool));
    t.rule_targets = targets;
  }
  return t;
}

// M5's penalties of the layer into `out`: Ω (under block parallelism this rank's heads'
// share `head_share` of the mean over all heads, summed over the group) and I_π (counted
// once, on the lead).
void record_penalties(at::Tensor omega, const at::Tensor& pi, const BlockShard* shard, double head_share,
                      ForwardResult& out) {
  auto mi = routing_mutual_information(pi);
  if (shard) {
    omega = shard->leave(omega * head_share);
    mi = shard->leave(shard->lead ? mi : mi * 0.0);
  }
  out.omega.push_back(omega);
  out.mutual_info.push_back(mi);
}

}  // namespace

at::Tensor localist_attention(const LocalistLayer& L, const at::Tensor& xn_in, const at::Tensor& anchors,
                              const at::Tensor& active_blocks, const ModelConfig& c, double dial,
                              const RuleMasks* rules, bool penalties, bool trace, ForwardResult& out,
                              const BlockShard* shard, bool routing_trace, bool fused) {
  const int64_t B = xn_in.size(0), T = xn_in.size(1), d = xn_in.size(2);
  const int64_t hb = c.heads_per_block, dh = c.head_dim;
  const int64_t K = active_blocks.size(0);
  const auto lopt = active_blocks.options();
  if (shard && trace) throw Error("attention traces need every block on one rank (evaluate without block parallelism)");
  // Blocks computed here, as indices into the active blocks (all of them without a shard).
  at::Tensor local = at::arange(K, lopt);
  if (shard) {
    const auto owned = at::tensor(shard->owned_slots, lopt);
    local = at::nonzero(at::isin(active_blocks, owned)).flatten();
  }
  const int64_t K_local = local.size(0), H = K_local * hb;
  // The computed blocks' rows in the block tensors: their slots, or where a
  // block-parallel rank that holds only its own blocks keeps them.
  if (!L.blocks_whole() && !shard) {
    throw Error("the layer holds only a block-parallel rank's blocks: assemble the model first");
  }
  at::Tensor rows = active_blocks.index_select(0, local);
  if (!L.blocks_whole()) rows = L.slot_rows_on(rows.device()).index_select(0, rows);
  const at::Tensor active_heads = (rows.unsqueeze(1) * hb + at::arange(hb, lopt)).flatten();
  const int64_t hmax = L.qkv_b.size(0) / (3 * dh);            // heads the block tensors hold
  const at::Tensor head_block = local.repeat_interleave(hb);  // each computed head's block, in [0, K)
  // Under block parallelism the input's gradient is summed over the group on the way back
  // (sequence parallel: the caller's gather_seq does it).
  const at::Tensor xn = shard && !shard->sequence_parallel() ? shard->enter(xn_in) : xn_in;

  // Only the computed heads' projections are used (no gather when that is every slot).
  const bool all_heads = !shard && K == c.k_max && L.blocks_whole();
  const auto w_qkv =
      all_heads ? L.qkv_w : L.qkv_w.view({3, hmax, dh, d}).index_select(1, active_heads).reshape({3 * H * dh, d});
  const auto b_qkv =
      all_heads ? L.qkv_b : L.qkv_b.view({3, hmax, dh}).index_select(1, active_heads).reshape({3 * H * dh});
  const auto qkv_flat = at::linear(xn, w_qkv, b_qkv);  // (B,T,3*H*d_h)
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));

  // M2 routing: pi_ik = softmax over active k of r_i . a_k / tau. At dial 0 with no
  // penalties, rules or trace nothing reads it, so it is not computed.
  const bool routing = dial != 0.0 || penalties || trace || routing_trace || rules;
  at::Tensor slot_map;
  if (rules) slot_map = block_slot_to_active(active_blocks, c.k_max);
  // Routing-only traces (the trainer's block-share statistic) take the fused routing too, so
  // that the micro-batches that carry one train on the same π as the others.
  const bool fused_routing = fused && !trace && !fused_disabled_by_env("attention");
  const Routing rt =
      routing ? route_tokens(xn, L.router_w, anchors, active_blocks, c.tau, rules, slot_map, fused_routing) : Routing();
  const at::Tensor &pi = rt.pi, &hard = rt.hard;

  // M6 point rules: T_rule(i), causal, and whether any fired for the query.
  at::Tensor targets, fired;
  if (rules && (rules->point_targets.defined() || rules->point_block.defined())) {
    targets = point_rule_targets(*rules, slot_map, hard, B, T, xn.options());
    fired = targets.any(-1);
  }
  // The key bias of M3, -dial * gamma * (1 - pi_jk) for head h of block k: (B,T,H).
  const auto key_bias = [&] { return (dial * c.gamma) * (pi.index_select(-1, head_block) - 1.0); };

  // M4: y_i = sum_k g_ik o_ik with g_ik = (1 - dial) + dial * K * pi_ik (all ones at dial 0).
  const auto gate = routing ? (1.0 - dial) + dial * static_cast<double>(K) * pi : at::Tensor();
  at::Tensor heads, alpha, z, scores, omega;
  const AttentionPath path = H > 0 ? attention_path(qkv_flat, fused, trace) : AttentionPath::kExplicit;
  if (path != AttentionPath::kExplicit) {
    AttentionKernelInput kin;
    kin.qkv = qkv_flat, kin.heads = H, kin.head_dim = dh, kin.scale = scale;
    if (dial != 0.0) kin.key_bias = key_bias(), kin.gate = gate.index_select(-1, head_block);
    if (targets.defined()) kin.rule_targets = targets, kin.rho = c.rho;
    if (penalties) kin.hard = hard, kin.head_block = head_block, kin.blocks = K;
    auto r = path == AttentionPath::kFused ? fused_attention(kin) : sdpa_attention(kin);
    heads = r.heads;  // (B,T,H,d_h), gated
    omega = r.omega;
  } else {
    ExplicitAttention e = explicit_attention(qkv_flat, B, T, H, dh, scale, dial, c.rho, targets, trace,
                                             dial != 0.0 ? key_bias() : at::Tensor());
    heads = e.heads, alpha = e.alpha, z = e.z, scores = e.scores;
    if (penalties) omega = H > 0 ? penalty_omega(alpha, hard, head_block, K) : at::zeros({}, xn.options());
    if (dial != 0.0) heads = heads * gate.index_select(-1, head_block).unsqueeze(-1);
  }
  const auto w_o = all_heads ? L.out_w : L.out_w.view({d, hmax, dh}).index_select(1, active_heads).reshape({d, H * dh});
  // The output bias is added once, after the partial outputs of the group are summed
  // (sequence parallel: into this rank's positions).
  const auto partial = at::linear(heads.reshape({B, T, H * dh}), w_o);
  auto y = (!shard                       ? partial
            : shard->sequence_parallel() ? shard->scatter_seq(partial)
                                         : shard->leave(partial)) +
           L.out_b;

  if (penalties) record_penalties(omega, pi, shard, static_cast<double>(H) / static_cast<double>(K * hb), out);
  if (trace || routing_trace) {
    out.traces.push_back(layer_trace(dial, rt, gate, trace, alpha, scores, z, fired, targets, B, T, xn.options()));
  }
  out.head_block = head_block;
  return y;
}

}  // namespace localist
