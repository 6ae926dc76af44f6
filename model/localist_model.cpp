// SPDX-License-Identifier: Apache-2.0
// localist_model.cpp: see localist_model.h. Shapes: B sequences, T positions, d width,
// K active blocks, H = K * heads_per_block active heads of width d_h.
#include "model/localist_model.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "core/error.h"
#include "core/mix64.h"
#include "model/block_attention.h"
#include "model/cpu_capability.h"
#include "model/fused_ffn.h"
#include "model/layer_replay.h"

namespace localist {
namespace {

at::Tensor normal_init(at::IntArrayRef shape, double std, at::Generator& gen) {
  return at::empty(shape, at::kFloat).normal_(0.0, std, gen);
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
  ffn_hidden_ = f;
}

int64_t LocalistLayer::row(int64_t slot) const {
  if (blocks_whole()) return slot;
  const int64_t r = slot >= 0 && slot < static_cast<int64_t>(slot_row.size()) ? slot_row[slot] : -1;
  LOCALIST_CHECK(r >= 0, "block slot ", slot, " is not held by this block-parallel rank (its owner holds it)");
  return r;
}

void LocalistLayer::hold(const std::vector<at::Tensor>& split, std::vector<int64_t> slot_rows, int64_t ffn_first) {
  if (split.size() != 6) throw Error("a layer holds six split tensors, got " + std::to_string(split.size()));
  const char* names[6] = {"qkv_weight", "qkv_bias", "out_weight", "fc_weight", "fc_bias", "proj_weight"};
  at::Tensor* members[6] = {&qkv_w, &qkv_b, &out_w, &fc_w, &fc_b, &proj_w};
  for (int i = 0; i < 6; ++i) {
    *members[i] = split[i];
    if (!members[i]->requires_grad()) members[i]->set_requires_grad(true);
    parameters_[names[i]] = *members[i];  // the registered parameter, replaced in place
  }
  slot_row = std::move(slot_rows);
  slot_rows_index_ = at::Tensor();
  ffn_begin = ffn_first;
}

const at::Tensor& LocalistLayer::slot_rows_on(const at::Device& device) const {
  if (!slot_rows_index_.defined() || slot_rows_index_.device() != device) {
    slot_rows_index_ = at::tensor(slot_row, at::kLong).to(device);
  }
  return slot_rows_index_;
}

std::vector<ParameterShape> localist_parameter_shapes(const ModelConfig& c, int64_t vocab) {
  const int64_t d = c.d_model, hd = c.k_max * c.heads_per_block * c.head_dim, f = c.ffn_mult * c.d_model;
  std::vector<ParameterShape> out = {
      {"wte", {vocab, d}}, {"wpe", {c.context, d}}, {"lnf_weight", {d}}, {"lnf_bias", {d}}};
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "layer" + std::to_string(l) + ".";
    for (ParameterShape s : std::vector<ParameterShape>{{"ln1_weight", {d}},
                                                        {"ln1_bias", {d}},
                                                        {"qkv_weight", {3 * hd, d}},
                                                        {"qkv_bias", {3 * hd}},
                                                        {"out_weight", {d, hd}},
                                                        {"out_bias", {d}},
                                                        {"router_weight", {c.anchor_dim, d}},
                                                        {"ln2_weight", {d}},
                                                        {"ln2_bias", {d}},
                                                        {"fc_weight", {f, d}},
                                                        {"fc_bias", {f}},
                                                        {"proj_weight", {d, f}},
                                                        {"proj_bias", {d}}}) {
      s.name = p + s.name;
      out.push_back(s);
    }
  }
  return out;
}

LocalistModel::LocalistModel(const ModelConfig& config, int64_t vocab_size, uint64_t seed)
    : config_(config), vocab_size_(vocab_size), anchor_code_(anchors_make(config.k_max, config.anchor_dim, seed)) {
  auto gen = at::detail::createCPUGenerator(seed);
  wte = register_parameter("wte", normal_init({vocab_size, config.d_model}, 0.02, gen));
  wpe = register_parameter("wpe", normal_init({config.context, config.d_model}, 0.01, gen));
  lnf_w = register_parameter("lnf_weight", at::ones({config.d_model}));
  lnf_b = register_parameter("lnf_bias", at::zeros({config.d_model}));
  anchors = register_buffer(
      "anchors", at::tensor(anchor_code_.values, at::kDouble).view({config.k_max, config.anchor_dim}).to(at::kFloat));
  block_active = register_buffer("block_active", at::arange(config.k_max) < config.k_initial);
  for (int64_t l = 0; l < config.n_layers; ++l) {
    auto layer = std::make_shared<LocalistLayer>(config, l, seed);
    layers.push_back(register_module("layer" + std::to_string(l), layer));
  }
}

void LocalistModel::set_block_active(int64_t slot, bool active) {
  if (slot < 0 || slot >= config_.k_max) {
    throw Error("block slot " + std::to_string(slot) + " is outside [0, k_max = " + std::to_string(config_.k_max) +
                ")");
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

bool LocalistModel::is_block_tensor(const at::Tensor& t) const {
  return std::any_of(layers.begin(), layers.end(),
                     [&](const auto& l) { return t.is_same(l->qkv_w) || t.is_same(l->qkv_b) || t.is_same(l->out_w); });
}

bool LocalistModel::is_ffn_split_tensor(const at::Tensor& t) const {
  return std::any_of(layers.begin(), layers.end(),
                     [&](const auto& l) { return t.is_same(l->fc_w) || t.is_same(l->fc_b) || t.is_same(l->proj_w); });
}

void LocalistModel::hold_vocab(const at::Tensor& rows, int64_t first) {
  wte = rows;
  if (!wte.requires_grad()) wte.set_requires_grad(true);
  parameters_["wte"] = wte;
  vocab_begin = first;
}

std::optional<LocalistModel::HeldPart> LocalistModel::held_part(const at::Tensor& p) const {
  if (p.is_same(wte)) {
    return vocab_whole() ? std::nullopt : std::optional<HeldPart>(HeldPart{0, vocab_begin, vocab_size_});
  }
  for (const auto& L : layers) {
    if (L->ffn_whole()) break;  // every layer holds the same units
    if (p.is_same(L->fc_w) || p.is_same(L->fc_b)) return HeldPart{0, L->ffn_begin, L->ffn_hidden()};
    if (p.is_same(L->proj_w)) return HeldPart{1, L->ffn_begin, L->ffn_hidden()};
  }
  return std::nullopt;
}

int64_t LocalistModel::parameter_count() {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

namespace {

// Dropout as at::dropout computes it on the CPU (a Bernoulli mask of the input's shape,
// scaled by 1/(1 - p)), on every device. Under sequence parallelism the mask is drawn
// for the whole sequence and cut to this rank's positions, so every rank and every
// world size draws the same masks.
at::Tensor dropout_of(const at::Tensor& x, double p, const BlockShard* shard, int64_t T) {
  if (p <= 0) return x;
  auto sizes = x.sizes().vec();
  const bool part = shard && shard->sequence_parallel();
  if (part) sizes[1] = T;
  auto noise = at::empty(sizes, x.options()).bernoulli_(1 - p);
  noise.div_(1 - p);
  if (part) {
    const auto [t0, t1] = shard->seq_range(T);
    noise = noise.narrow(1, t0, t1 - t0);
  }
  return x * noise;
}

// The FFN's hidden layer gelu(x W^T + b): fused on the CPU (the exact GELU), at::linear +
// at::gelu otherwise (and for GPT-2's tanh approximation).
at::Tensor ffn_hidden(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, bool fused, bool tanh) {
  if (!tanh && fused && fused_ffn_supported(x) && !fused_disabled_by_env("ffn")) return linear_bias_gelu(x, w, b);
  return at::gelu(at::linear(x, w, b), tanh ? "tanh" : "none");
}

}  // namespace

at::Tensor LocalistModel::layer_forward(const LocalistLayer& L, const at::Tensor& x_in, double dial,
                                        const ForwardOptions& o, double p, int64_t T, ForwardResult& out) const {
  const BlockShard* shard = o.shard;
  const bool seq = shard && shard->sequence_parallel();
  const double eps = config_.layer_norm_eps;
  const bool tanh = config_.activation == "gelu_tanh";
  const auto xn = at::layer_norm(x_in, {config_.d_model}, L.ln1_w, L.ln1_b, eps);
  auto attn = localist_attention(L, seq ? shard->gather_seq(xn, T) : xn, anchors, out.active_blocks, config_, dial,
                                 o.rules, o.penalties, o.trace, out, shard, o.routing_trace, o.fused);
  const auto x = x_in + dropout_of(attn, p, shard, T);
  const auto xn2 = at::layer_norm(x, {config_.d_model}, L.ln2_w, L.ln2_b, eps);
  at::Tensor ffn;
  if (shard && shard->ffn_size >= 0) {
    // This rank's hidden units (held alone, or cut from the whole FFN); the second
    // matrix's partial outputs are summed over the group (its bias added once, after the sum).
    const int64_t a = shard->ffn_begin, n = shard->ffn_size;
    LOCALIST_CHECK(L.ffn_whole() || (L.ffn_begin == a && L.fc_w.size(0) == n), "the layer holds FFN units from ",
                   L.ffn_begin, ", the shard computes ", n, " from ", a);
    auto part_of = [&](const at::Tensor& t, int64_t dim) { return L.ffn_whole() ? t.narrow(dim, a, n) : t; };
    const auto in = seq ? shard->gather_seq(xn2, T) : shard->enter(xn2);
    const auto part =
        at::linear(ffn_hidden(in, part_of(L.fc_w, 0), part_of(L.fc_b, 0), o.fused, tanh), part_of(L.proj_w, 1));
    ffn = (seq ? shard->scatter_seq(part) : shard->leave(part)) + L.proj_b;
  } else {
    if (!L.ffn_whole()) throw Error("the layer holds only a block-parallel rank's FFN part: assemble the model first");
    ffn = at::linear(ffn_hidden(xn2, L.fc_w, L.fc_b, o.fused, tanh), L.proj_w, L.proj_b);
  }
  return x + dropout_of(ffn, p, shard, T);
}

ForwardResult LocalistModel::forward(const at::Tensor& tokens, const ForwardOptions& o) {
  const int64_t T = tokens.size(1);
  if (T > config_.context) {
    throw Error("sequence of " + std::to_string(T) +
                " tokens exceeds model.context = " + std::to_string(config_.context));
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
  // Sequence parallel: this rank's positions only, up to the head and the loss.
  const bool seq = o.shard && o.shard->sequence_parallel();
  const auto [t0, t1] = seq ? o.shard->seq_range(T) : std::pair<int64_t, int64_t>{0, T};
  const bool vocab = seq && o.shard->vocab_parallel();
  if (!vocab && !vocab_whole())
    throw Error("the model holds only a block-parallel rank's vocabulary rows: assemble it first");
  at::Tensor x;
  at::Tensor rows = wte;  // this rank's vocabulary rows (vocabulary parallel)
  if (vocab) {
    const int64_t v0 = o.shard->vocab_begin, vn = o.shard->vocab_size;
    if (vocab_whole()) {
      rows = wte.narrow(0, v0, vn);
    } else {
      LOCALIST_CHECK(vocab_begin == v0 && wte.size(0) == vn, "the model holds vocabulary rows from ", vocab_begin,
                     ", the shard scores ", vn, " from ", v0);
    }
    // This rank's rows for every position (zero for other rows' tokens), summed over the
    // group into each rank's positions.
    const auto local = tokens - v0;
    const auto inside = (local.ge(0) & local.lt(vn)).unsqueeze(-1).to(rows.scalar_type());
    x = o.shard->scatter_seq(at::embedding(rows, local.clamp(0, vn - 1)) * inside) +
        wpe.narrow(0, t0, t1 - t0).unsqueeze(0);
  } else {
    x = at::embedding(wte, tokens.narrow(1, t0, t1 - t0)) + wpe.narrow(0, t0, t1 - t0).unsqueeze(0);
  }
  x = dropout_of(x, p, o.shard, T);
  // Traces keep every layer's attention anyway, so they are never checkpointed.
  const bool replay =
      o.checkpoint_activations && !o.trace && !o.routing_trace && is_training() && at::GradMode::is_enabled();
  for (int64_t l = 0; l < config_.n_layers; ++l) {
    const LocalistLayer& L = *layers[l];
    if (!replay) {
      x = layer_forward(L, x, o.dial[l], o, p, T, out);
      continue;
    }
    // The replayed layer owns copies of what it reads (the rule masks outlive this call).
    auto rules = o.rules ? std::make_shared<RuleMasks>(*o.rules) : nullptr;
    auto shard = o.shard ? std::make_shared<BlockShard>(*o.shard) : nullptr;
    const at::Tensor active = out.active_blocks;
    const double dial = o.dial[l];
    const bool penalties = o.penalties, fused = o.fused;
    auto fn = [this, &L, rules, shard, active, dial, penalties, fused, p, T](const at::Tensor& xin) {
      ForwardOptions lo;
      lo.fused = fused;
      lo.rules = rules.get();
      lo.shard = shard.get();
      lo.penalties = penalties;
      ForwardResult r;
      r.active_blocks = active;
      std::vector<at::Tensor> outs{layer_forward(L, xin, dial, lo, p, T, r)};
      if (penalties) outs.insert(outs.end(), {r.omega.at(0), r.mutual_info.at(0)});
      return outs;
    };
    const auto outs = checkpointed_layer(fn, x, layers[l]->parameters());
    x = outs[0];
    if (penalties) out.omega.push_back(outs[1]), out.mutual_info.push_back(outs[2]);
  }
  x = at::layer_norm(x, {config_.d_model}, lnf_w, lnf_b, config_.layer_norm_eps);
  // Vocabulary parallel: this rank's rows' logits for the whole sequence.
  out.logits = vocab ? at::linear(o.shard->gather_seq(x, T), rows) : at::linear(x, wte);
  return out;
}

}  // namespace localist
