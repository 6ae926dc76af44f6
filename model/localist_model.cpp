// localist_model.cpp: see localist_model.h. Shapes: B sequences, T positions, d width,
// K active blocks, H = K * heads_per_block active heads of width d_h.
#include "model/localist_model.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/mix64.h"
#include "model/penalty.h"

namespace localist {
namespace {

at::Tensor normal_init(at::IntArrayRef shape, double std, at::Generator& gen) {
  return at::empty(shape, at::kFloat).normal_(0.0, std, gen);
}

// Slot id -> index among the active blocks (-1 for inactive), on the device of `active`.
at::Tensor slot_to_active(const at::Tensor& active_blocks, int64_t k_max) {
  auto map = at::full({k_max}, -1, active_blocks.options());
  map.index_put_({active_blocks}, at::arange(active_blocks.size(0), active_blocks.options()));
  return map;
}

at::Tensor map_slots(const at::Tensor& slots, const at::Tensor& map) {
  const auto idx = map.index_select(0, slots.clamp_min(0).flatten()).view(slots.sizes());
  return at::where(slots >= 0, idx, at::full_like(idx, -1));
}

}  // namespace

LocalistLayer::LocalistLayer(const ModelConfig& c, int64_t layer_index, uint64_t seed) {
  const int64_t d = c.d_model, hd = c.k_max * c.heads_per_block * c.head_dim, f = c.ffn_mult * c.d_model;
  auto gen = at::detail::createCPUGenerator(mix64(seed) + static_cast<uint64_t>(layer_index) + 1);
  const double resid_std = 0.02 / std::sqrt(2.0 * c.n_layers);
  ln1_w = register_parameter("ln1_weight", at::ones({d}));
  ln1_b = register_parameter("ln1_bias", at::zeros({d}));
  qkv_w = register_parameter("qkv_weight", normal_init({3 * hd, d}, 0.02, gen));
  qkv_b = register_parameter("qkv_bias", at::zeros({3 * hd}));
  out_w = register_parameter("out_weight", normal_init({d, hd}, resid_std, gen));
  out_b = register_parameter("out_bias", at::zeros({d}));
  router_w = register_parameter("router_weight", normal_init({c.anchor_dim, d}, 0.02, gen));
  ln2_w = register_parameter("ln2_weight", at::ones({d}));
  ln2_b = register_parameter("ln2_bias", at::zeros({d}));
  fc_w = register_parameter("fc_weight", normal_init({f, d}, 0.02, gen));
  fc_b = register_parameter("fc_bias", at::zeros({f}));
  proj_w = register_parameter("proj_weight", normal_init({d, f}, resid_std, gen));
  proj_b = register_parameter("proj_bias", at::zeros({d}));
}

LocalistModel::LocalistModel(const ModelConfig& config, int64_t vocab_size, uint64_t seed)
    : config_(config), vocab_size_(vocab_size), anchor_code_(anchors_make(config.k_max, config.anchor_dim, seed)) {
  auto gen = at::detail::createCPUGenerator(seed);
  wte = register_parameter("wte", normal_init({vocab_size, config.d_model}, 0.02, gen));
  wpe = register_parameter("wpe", normal_init({config.context, config.d_model}, 0.01, gen));
  lnf_w = register_parameter("lnf_weight", at::ones({config.d_model}));
  lnf_b = register_parameter("lnf_bias", at::zeros({config.d_model}));
  anchors = register_buffer("anchors", at::tensor(anchor_code_.values, at::kDouble)
                                           .view({config.k_max, config.anchor_dim})
                                           .to(at::kFloat));
  block_active = register_buffer("block_active", at::arange(config.k_max) < config.k_initial);
  for (int64_t l = 0; l < config.n_layers; ++l) {
    auto layer = std::make_shared<LocalistLayer>(config, l, seed);
    layers.push_back(register_module("layer" + std::to_string(l), layer));
  }
}

void LocalistModel::set_block_active(int64_t slot, bool active) {
  if (slot < 0 || slot >= config_.k_max) {
    throw Error("block slot " + std::to_string(slot) + " is outside [0, k_max = " + std::to_string(config_.k_max) + ")");
  }
  at::NoGradGuard guard;
  block_active.index_put_({slot}, active);
}

std::vector<int64_t> LocalistModel::active_slots() const {
  const auto cpu = block_active.ne(0).to(at::kCPU);
  std::vector<int64_t> out;
  for (int64_t k = 0; k < config_.k_max; ++k) {
    if (cpu[k].item<bool>()) out.push_back(k);
  }
  return out;
}

std::vector<at::Tensor> LocalistModel::decay_parameters() {
  std::vector<at::Tensor> out;
  for (auto& l : layers) out.insert(out.end(), {l->qkv_w, l->out_w, l->router_w, l->fc_w, l->proj_w});
  return out;
}

std::vector<at::Tensor> LocalistModel::no_decay_parameters() {
  std::vector<at::Tensor> out{wte, wpe, lnf_w, lnf_b};
  for (auto& l : layers) {
    out.insert(out.end(), {l->ln1_w, l->ln1_b, l->qkv_b, l->out_b, l->ln2_w, l->ln2_b, l->fc_b, l->proj_b});
  }
  return out;
}

int64_t LocalistModel::parameter_count() {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

at::Tensor localist_attention(const LocalistLayer& L, const at::Tensor& xn_in, const at::Tensor& anchors,
                              const at::Tensor& active_blocks, const ModelConfig& c, double dial,
                              const RuleMasks* rules, bool penalties, bool trace, ForwardResult& out,
                              const BlockShard* shard) {
  const int64_t B = xn_in.size(0), T = xn_in.size(1), d = xn_in.size(2);
  const int64_t hb = c.heads_per_block, dh = c.head_dim, hmax = c.k_max * hb;
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
  const at::Tensor active_heads = (active_blocks.index_select(0, local).unsqueeze(1) * hb + at::arange(hb, lopt)).flatten();
  const at::Tensor head_block = local.repeat_interleave(hb);  // each computed head's block, in [0, K)
  // Under block parallelism the input's gradient is summed over the group on the way back.
  const at::Tensor xn = shard ? shard->enter(xn_in) : xn_in;

  // Only the computed heads' projections are used (no gather when that is every slot).
  const bool all_heads = !shard && K == c.k_max;
  const auto w_qkv = all_heads ? L.qkv_w
                               : L.qkv_w.view({3, hmax, dh, d}).index_select(1, active_heads).reshape({3 * H * dh, d});
  const auto b_qkv = all_heads ? L.qkv_b
                               : L.qkv_b.view({3, hmax, dh}).index_select(1, active_heads).reshape({3 * H * dh});
  // unbind (not three selects): its backward is one stack, not three zero-filled copies.
  const auto qkv = at::linear(xn, w_qkv, b_qkv).view({B, T, 3, H, dh}).permute({2, 0, 3, 1, 4}).unbind(0);
  // 1/sqrt(d_h) is applied to q (B,H,T,d_h) rather than to the (B,H,T,T) scores.
  const auto q = qkv[0] * (1.0 / std::sqrt(static_cast<double>(dh))), k = qkv[1], v = qkv[2];

  // M2 routing: pi_ik = softmax over active k of r_i . a_k / tau. At dial 0 with no
  // penalties, rules or trace nothing reads it, so it is not computed.
  const bool routing = dial != 0.0 || penalties || trace || rules;
  at::Tensor pi, router;
  if (routing) {
    const auto r = at::linear(xn, L.router_w);
    router = r;
    const auto a = anchors.index_select(0, active_blocks);
    pi = at::softmax(at::matmul(r, a.t()) / c.tau, -1);
  }
  at::Tensor slot_map;
  if (rules) slot_map = slot_to_active(active_blocks, c.k_max);
  if (rules && rules->route_block.defined()) {
    const auto idx = map_slots(rules->route_block, slot_map);
    if ((idx.lt(0) & rules->route_block.ge(0)).any().item<bool>()) {
      throw Error("a route rule sends tokens to a block slot that is not active; activate it or fix the rules file");
    }
    const auto forced = idx.ge(0);
    pi = at::where(forced.unsqueeze(-1), at::one_hot(idx.clamp_min(0), K).to(pi.scalar_type()), pi);
  }
  const auto hard = routing ? pi.argmax(-1) : at::Tensor();

  // M3: z_ij = s_ij - dial * gamma * (1 - pi_jk) + rho * [j in T_rule(i)], causal.
  // NOTE(bias-in-matmul): the routing bias depends on the key only, so it rides in the
  // score matmul as one extra column: [q_i, 1] . [k_j, beta_j]. No (B,H,T,T) pass is
  // spent on it forward, and its gradient comes out of the matmul's backward.
  at::Tensor z, scores;
  if (dial != 0.0) {
    const auto beta = ((dial * c.gamma) * (pi.index_select(-1, head_block) - 1.0)).permute({0, 2, 1}).unsqueeze(-1);
    const auto q1 = at::cat({q, at::ones_like(beta)}, -1);  // (B,H,T,d_h+1)
    const auto k1 = at::cat({k, beta}, -1);
    z = at::matmul(q1, k1.transpose(-2, -1));
    if (trace) scores = at::matmul(q, k.transpose(-2, -1)).detach();
  } else {
    z = at::matmul(q, k.transpose(-2, -1));
    scores = z;
  }
  const auto causal = at::ones({T, T}, xn.options().dtype(at::kBool)).triu(1);
  at::Tensor targets, fired;
  if (rules && (rules->point_targets.defined() || rules->point_block.defined())) {
    targets = at::zeros({B, T, T}, xn.options().dtype(at::kBool));
    if (rules->point_targets.defined()) targets = targets | rules->point_targets;
    if (rules->point_block.defined()) {
      const auto pb = map_slots(rules->point_block, slot_map).unsqueeze(2);  // (B,T,1) query's target block
      targets = targets | (pb.ge(0) & hard.unsqueeze(1).eq(pb));
    }
    targets = targets & causal.logical_not();
    fired = targets.any(-1);
    z = z + c.rho * targets.unsqueeze(1).to(z.scalar_type());
  }
  z = z.masked_fill(causal, -std::numeric_limits<double>::infinity());
  const auto alpha = at::softmax(z, -1);

  // M4: y_i = sum_k g_ik o_ik with g_ik = (1 - dial) + dial * K * pi_ik (all ones at dial 0).
  const auto gate = routing ? (1.0 - dial) + dial * static_cast<double>(K) * pi : at::Tensor();
  auto heads = at::matmul(alpha, v).transpose(1, 2);  // (B,T,H,d_h)
  if (dial != 0.0) heads = heads * gate.index_select(-1, head_block).unsqueeze(-1);
  const auto w_o = all_heads ? L.out_w : L.out_w.view({d, hmax, dh}).index_select(1, active_heads).reshape({d, H * dh});
  // The output bias is added once, after the partial outputs of the group are summed.
  const auto partial = at::linear(heads.reshape({B, T, H * dh}), w_o);
  const auto y = (shard ? shard->leave(partial) : partial) + L.out_b;

  if (penalties) {
    auto omega = H > 0 ? penalty_omega(alpha, hard, head_block, K) : at::zeros({}, xn.options());
    auto mi = routing_mutual_information(pi);
    if (shard) {
      // Ω: this rank's heads' share of the mean over all heads; I_π: counted once, on the lead.
      omega = shard->leave(omega * (static_cast<double>(H) / static_cast<double>(K * hb)));
      mi = shard->leave(shard->lead ? mi : mi * 0.0);
    }
    out.omega.push_back(omega);
    out.mutual_info.push_back(mi);
  }
  if (trace) {
    LayerTrace t;
    t.dial = dial;
    t.alpha = alpha;
    t.scores = scores;
    t.logits = z;
    t.pi = pi;
    t.router = router.defined() ? router.detach() : router;
    t.gate = gate;
    t.hard = hard;
    t.rule_fired = fired.defined() ? fired : at::zeros({B, T}, xn.options().dtype(at::kBool));
    t.rule_targets = targets;
    out.traces.push_back(t);
  }
  out.head_block = head_block;
  return y;
}

ForwardResult LocalistModel::forward(const at::Tensor& tokens, const ForwardOptions& o) {
  const int64_t T = tokens.size(1);
  if (T > config_.context) {
    throw Error("sequence of " + std::to_string(T) + " tokens exceeds model.context = " + std::to_string(config_.context));
  }
  if (static_cast<int64_t>(o.dial.size()) != config_.n_layers) {
    throw Error("dial has " + std::to_string(o.dial.size()) + " values for " + std::to_string(config_.n_layers) +
                " layers");
  }
  for (double v : o.dial) {
    if (!(v >= 0.0 && v <= 1.0)) throw ConfigError("dial value " + std::to_string(v) + " is outside [0, 1]");
  }
  ForwardResult out;
  out.active_blocks = at::nonzero(block_active.ne(0)).flatten();
  if (out.active_blocks.size(0) == 0) throw Error("the model has no active block");
  const double p = is_training() ? config_.dropout : 0.0;
  at::Tensor x = at::embedding(wte, tokens) + wpe.narrow(0, 0, T).unsqueeze(0);
  if (p > 0) x = at::dropout(x, p, true);
  for (int64_t l = 0; l < config_.n_layers; ++l) {
    const LocalistLayer& L = *layers[l];
    const auto xn = at::layer_norm(x, {config_.d_model}, L.ln1_w, L.ln1_b);
    auto attn = localist_attention(L, xn, anchors, out.active_blocks, config_, o.dial[l], o.rules, o.penalties,
                                   o.trace, out, o.shard);
    if (p > 0) attn = at::dropout(attn, p, true);
    x = x + attn;
    const auto xn2 = at::layer_norm(x, {config_.d_model}, L.ln2_w, L.ln2_b);
    auto ffn = at::linear(at::gelu(at::linear(xn2, L.fc_w, L.fc_b)), L.proj_w, L.proj_b);
    if (p > 0) ffn = at::dropout(ffn, p, true);
    x = x + ffn;
  }
  x = at::layer_norm(x, {config_.d_model}, lnf_w, lnf_b);
  out.logits = at::linear(x, wte);
  return out;
}

}  // namespace localist
