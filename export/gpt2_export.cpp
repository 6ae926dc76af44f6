// SPDX-License-Identifier: Apache-2.0
// gpt2_export.cpp: see gpt2_export.h. The inverse of hf_import.cpp's mapping: GPT-2's
// Conv1D stores (in, out), the transpose of localist's linear weights; c_attn's columns
// are q | k | v, head by head, and head h is the (h mod h_b)-th head of slot h / h_b.
#include "export/gpt2_export.h"

#include <ATen/ATen.h>

#include <string>

#include "core/error.h"
#include "core/file_util.h"
#include "export/hf_export.h"

namespace localist {

void gpt2_export_check(const LocalistModel& m) {
  const ModelConfig& c = m.config();
  const auto active = m.active_slots();
  for (size_t k = 0; k < active.size(); ++k) {
    if (active[k] != static_cast<int64_t>(k)) {
      throw ConfigError("--format gpt2: the active blocks are not slots 0.." + std::to_string(active.size() - 1) +
                        " (slot " + std::to_string(active[k]) +
                        " is active out of order), so they are no GPT-2 heads; use --format hf, which keeps them");
    }
  }
  const int64_t heads = static_cast<int64_t>(active.size()) * c.heads_per_block;
  if (heads * c.head_dim != c.d_model) {
    throw ConfigError("--format gpt2: the " + std::to_string(active.size()) + " active blocks hold " +
                      std::to_string(heads) + " heads of " + std::to_string(c.head_dim) + " = " +
                      std::to_string(heads * c.head_dim) + " units, but GPT-2 needs n_head x head_dim = n_embd " +
                      std::to_string(c.d_model) + "; use --format hf, which keeps any shape");
  }
  if (c.activation != "gelu" && c.activation != "gelu_tanh") {
    throw ConfigError("--format gpt2: model.activation " + c.activation + " has no GPT-2 activation_function");
  }
  if (!m.vocab_whole()) throw Error("export: the model holds only part of its vocabulary; assemble it first");
}

std::vector<std::pair<std::string, at::Tensor>> gpt2_tensors(const LocalistModel& m) {
  gpt2_export_check(m);
  const ModelConfig& c = m.config();
  const int64_t d = c.d_model, S = c.k_max * c.heads_per_block * c.head_dim;
  std::vector<std::pair<std::string, at::Tensor>> out = {{"transformer.wte.weight", m.wte},
                                                         {"transformer.wpe.weight", m.wpe},
                                                         {"transformer.ln_f.weight", m.lnf_w},
                                                         {"transformer.ln_f.bias", m.lnf_b}};
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const LocalistLayer& L = *m.layers[l];
    if (!L.blocks_whole() || !L.ffn_whole()) throw Error("export: layer " + std::to_string(l) + " is not whole");
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    std::vector<at::Tensor> w, b;
    for (int64_t which = 0; which < 3; ++which) {  // q, k, v of the active slots (the first d rows)
      w.push_back(L.qkv_w.narrow(0, which * S, d).t());
      b.push_back(L.qkv_b.narrow(0, which * S, d));
    }
    const std::vector<std::pair<const char*, at::Tensor>> named = {{"ln_1.weight", L.ln1_w},
                                                                   {"ln_1.bias", L.ln1_b},
                                                                   {"attn.c_attn.weight", at::cat(w, 1)},
                                                                   {"attn.c_attn.bias", at::cat(b, 0)},
                                                                   {"attn.c_proj.weight", L.out_w.narrow(1, 0, d).t()},
                                                                   {"attn.c_proj.bias", L.out_b},
                                                                   {"ln_2.weight", L.ln2_w},
                                                                   {"ln_2.bias", L.ln2_b},
                                                                   {"mlp.c_fc.weight", L.fc_w.t()},
                                                                   {"mlp.c_fc.bias", L.fc_b},
                                                                   {"mlp.c_proj.weight", L.proj_w.t()},
                                                                   {"mlp.c_proj.bias", L.proj_b}};
    for (const auto& [name, t] : named) out.emplace_back(p + name, t.contiguous());
  }
  return out;
}

nlohmann::json gpt2_config(const Gpt2ExportSpec& s) {
  const ModelConfig& c = s.model->config();
  const int64_t heads = static_cast<int64_t>(s.model->active_slots().size()) * c.heads_per_block;
  const uint32_t doc = s.tokenizer->document_id();
  return {{"model_type", "gpt2"},
          {"architectures", {"GPT2LMHeadModel"}},
          {"vocab_size", s.model->vocab_size()},
          {"n_positions", c.context},
          {"n_embd", c.d_model},
          {"n_layer", c.n_layers},
          {"n_head", heads},
          {"n_inner", c.ffn_mult * c.d_model},
          {"activation_function", c.activation == "gelu" ? "gelu" : "gelu_new"},
          {"layer_norm_epsilon", c.layer_norm_eps},
          {"resid_pdrop", 0.0},
          {"embd_pdrop", 0.0},
          {"attn_pdrop", 0.0},
          {"initializer_range", 0.02},
          {"scale_attn_weights", true},
          {"scale_attn_by_inverse_layer_idx", false},
          {"reorder_and_upcast_attn", false},
          {"use_cache", true},
          {"bos_token_id", doc},
          {"eos_token_id", doc},
          {"pad_token_id", hf_pad_token_id(*s.tokenizer)},
          {"tie_word_embeddings", true},
          {"dtype", s.dtype == "bf16" ? "bfloat16" : "float32"},
          {"localist", s.localist}};
}

void gpt2_write_model(const Gpt2ExportSpec& s, const std::string& dir) {
  if (!s.model || !s.tokenizer) throw Error("export: internal error: no model or tokenizer to export");
  hf_write_weights_and_tokenizer(gpt2_tensors(*s.model), s.dtype, *s.tokenizer, s.model->config().context, dir);
  write_file_atomic(dir + "/config.json", gpt2_config(s).dump(2) + "\n");
  write_file_atomic(dir + "/README.md", s.model_card);
}

}  // namespace localist
