// SPDX-License-Identifier: Apache-2.0
// hf_import.cpp: see hf_import.h. GPT-2's Conv1D stores weights as (in, out), the
// transpose of a linear layer's; c_attn's columns are q | k | v, each head by head.
#include "checkpoint/hf_import.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>

#include "checkpoint/safetensors.h"
#include "core/error.h"
#include "core/file_util.h"

namespace localist {
namespace {

struct Source {
  std::string config_path, weights_path, prefix;  // prefix: "transformer." or ""
  nlohmann::json config;
  int64_t n_head = 0;
};

int64_t get_int(const Source& s, const char* key, int64_t fallback = -1) {
  const auto& j = s.config;
  if (!j.contains(key) || j[key].is_null()) {
    if (fallback >= 0) return fallback;
    throw ConfigError(s.config_path + ": " + key + " is missing");
  }
  if (!j[key].is_number_integer()) throw ConfigError(s.config_path + ": " + key + " is not an integer");
  return j[key].get<int64_t>();
}

[[noreturn]] void mismatch(const Source& s, const std::string& key, int64_t theirs, const std::string& ours,
                           int64_t value) {
  throw ConfigError(s.config_path + ": " + key + " is " + std::to_string(theirs) + " but " + ours + " is " +
                    std::to_string(value) + "; set " + ours + " to the source's value");
}

// config.json against the model section: the architecture and every shape.
Source read_source(const ModelConfig& c, int64_t vocab_size, const std::string& dir) {
  Source s;
  s.config_path = (std::filesystem::path(dir) / "config.json").string();
  s.weights_path = (std::filesystem::path(dir) / "model.safetensors").string();
  if (!std::filesystem::is_regular_file(s.config_path)) {
    throw ConfigError(s.config_path + ": no such file (model.init_from.path must be a Hugging Face model directory)");
  }
  s.config = nlohmann::json::parse(read_file(s.config_path), nullptr, false);
  if (!s.config.is_object()) throw ConfigError(s.config_path + ": not a JSON object");
  const std::string type = s.config.value("model_type", std::string());
  if (type != "gpt2") {
    throw ConfigError(s.config_path + ": model_type '" + type +
                      "' is not a GPT-2-family model (model_type gpt2); localist imports GPT-2's architecture only");
  }
  if (get_int(s, "n_embd") != c.d_model) mismatch(s, "n_embd", get_int(s, "n_embd"), "model.d_model", c.d_model);
  if (get_int(s, "n_layer") != c.n_layers) mismatch(s, "n_layer", get_int(s, "n_layer"), "model.n_layers", c.n_layers);
  s.n_head = get_int(s, "n_head");
  if (s.n_head <= 0 || s.n_head % c.heads_per_block != 0) {
    throw ConfigError(s.config_path + ": n_head " + std::to_string(s.n_head) + " is not a multiple of " +
                      "model.heads_per_block " + std::to_string(c.heads_per_block) +
                      " (the source's heads become blocks of heads_per_block heads)");
  }
  if (s.n_head / c.heads_per_block != c.k_initial) {
    mismatch(s, "n_head / model.heads_per_block", s.n_head / c.heads_per_block, "model.k_initial", c.k_initial);
  }
  if (c.d_model % s.n_head != 0 || c.d_model / s.n_head != c.head_dim) {
    mismatch(s, "n_embd / n_head", c.d_model / s.n_head, "model.head_dim", c.head_dim);
  }
  if (get_int(s, "n_positions") < c.context) {
    mismatch(s, "n_positions", get_int(s, "n_positions"), "model.context (at most)", c.context);
  }
  if (get_int(s, "vocab_size") != vocab_size) {
    throw ConfigError(s.config_path + ": vocab_size is " + std::to_string(get_int(s, "vocab_size")) +
                      " but the tokenizer has " + std::to_string(vocab_size) +
                      " ids; use the source's tokenizer (data.tokenizer)");
  }
  if (get_int(s, "n_inner", 4 * c.d_model) != c.ffn_mult * c.d_model) {
    mismatch(s, "n_inner", get_int(s, "n_inner", 4 * c.d_model), "model.ffn_mult x d_model", c.ffn_mult * c.d_model);
  }
  const std::string act = s.config.value("activation_function", std::string("gelu_new"));
  const std::string want = act == "gelu"                                       ? "gelu"
                           : (act == "gelu_new" || act == "gelu_pytorch_tanh") ? "gelu_tanh"
                                                                               : "";
  if (want.empty()) throw ConfigError(s.config_path + ": activation_function '" + act + "' is not gelu or gelu_new");
  if (want != c.activation) {
    throw ConfigError(s.config_path + ": activation_function '" + act + "' needs model.activation: " + want +
                      " (the config has " + c.activation + ")");
  }
  const double eps = s.config.value("layer_norm_epsilon", 1e-5);
  if (eps != c.layer_norm_eps) {
    throw ConfigError(s.config_path + ": layer_norm_epsilon is " + nlohmann::json(eps).dump() +
                      "; set model.layer_norm_eps to it (the config has " + nlohmann::json(c.layer_norm_eps).dump() +
                      ")");
  }
  for (const char* flag : {"scale_attn_by_inverse_layer_idx", "add_cross_attention"}) {
    if (s.config.value(flag, false)) throw ConfigError(s.config_path + ": " + flag + " is not supported");
  }
  if (!s.config.value("scale_attn_weights", true)) {
    throw ConfigError(s.config_path + ": scale_attn_weights false is not supported");
  }
  return s;
}

// Every tensor the import reads: its GPT-2 name (without the prefix) and shape.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const ModelConfig& c, int64_t vocab) {
  const int64_t d = c.d_model, f = c.ffn_mult * c.d_model;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out = {
      {"wte.weight", {vocab, d}}, {"ln_f.weight", {d}}, {"ln_f.bias", {d}}};
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    for (const auto& [name, shape] :
         std::vector<std::pair<std::string, std::vector<int64_t>>>{{"ln_1.weight", {d}},
                                                                   {"ln_1.bias", {d}},
                                                                   {"attn.c_attn.weight", {d, 3 * d}},
                                                                   {"attn.c_attn.bias", {3 * d}},
                                                                   {"attn.c_proj.weight", {d, d}},
                                                                   {"attn.c_proj.bias", {d}},
                                                                   {"ln_2.weight", {d}},
                                                                   {"ln_2.bias", {d}},
                                                                   {"mlp.c_fc.weight", {d, f}},
                                                                   {"mlp.c_fc.bias", {f}},
                                                                   {"mlp.c_proj.weight", {f, d}},
                                                                   {"mlp.c_proj.bias", {d}}}) {
      out.emplace_back(p + name, shape);
    }
  }
  return out;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "(";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + ")";
}

// The header's names and shapes against what the import reads; sets the name prefix.
void check_tensors(const ModelConfig& c, int64_t vocab, Source& s) {
  std::map<std::string, SafetensorsEntry> header;
  try {
    header = safetensors_header(s.weights_path);
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  s.prefix = header.count("transformer.wte.weight") ? "transformer." : "";
  const std::vector<at::ScalarType> floats = {at::kFloat, at::kHalf, at::kBFloat16, at::kDouble};
  auto check = [&](const std::string& name, const std::vector<int64_t>& shape, bool exact) {
    const auto it = header.find(s.prefix + name);
    if (it == header.end()) {
      throw ConfigError(s.weights_path + ": tensor " + s.prefix + name + " is missing (a GPT-2 checkpoint has it)");
    }
    const auto& e = it->second;
    const bool fits =
        exact ? e.shape == shape : (e.shape.size() == 2 && e.shape[0] >= shape[0] && e.shape[1] == shape[1]);
    if (!fits) {
      throw ConfigError(s.weights_path + ": tensor " + s.prefix + name + " has shape " + shape_text(e.shape) +
                        ", the model section needs " + shape_text(shape));
    }
    if (std::find(floats.begin(), floats.end(), e.dtype) == floats.end()) {
      throw ConfigError(s.weights_path + ": tensor " + s.prefix + name + " is not floating point");
    }
  };
  for (const auto& [name, shape] : expected_tensors(c, vocab)) check(name, shape, true);
  check("wpe.weight", {c.context, c.d_model}, false);  // the first `context` positions are used
}

// read_source, with a value of the wrong JSON type (a string where a number belongs) as a
// config error naming the file.
Source read_source_checked(const ModelConfig& c, int64_t vocab_size, const std::string& dir) {
  try {
    return read_source(c, vocab_size, dir);
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError((std::filesystem::path(dir) / "config.json").string() + ": a value has the wrong type (" +
                      e.what() + ")");
  }
}

}  // namespace

void hf_import_check(const ModelConfig& config, int64_t vocab_size, const std::string& dir) {
  Source s = read_source_checked(config, vocab_size, dir);
  check_tensors(config, vocab_size, s);
}

HfImportSummary hf_import_gpt2(LocalistModel& model, const std::string& dir) {
  const ModelConfig& c = model.config();
  Source s = read_source_checked(c, model.vocab_size(), dir);
  check_tensors(c, model.vocab_size(), s);
  const SafetensorsFile file = safetensors_read(s.weights_path);
  auto get = [&](const std::string& name) { return file.tensors.at(s.prefix + name).to(at::kFloat); };
  if (const auto it = file.tensors.find("lm_head.weight"); it != file.tensors.end()) {
    if (!at::equal(it->second.to(at::kFloat), get("wte.weight"))) {
      throw ConfigError(s.weights_path + ": lm_head.weight differs from wte.weight; localist's head is tied");
    }
  }
  at::NoGradGuard no_grad;
  const int64_t d = c.d_model, heads = s.n_head, width = heads * c.head_dim;
  const int64_t S = c.k_max * c.heads_per_block * c.head_dim;  // rows of q (and of k, v) in qkv_w
  model.wte.copy_(get("wte.weight"));
  model.wpe.copy_(get("wpe.weight").narrow(0, 0, c.context));
  model.lnf_w.copy_(get("ln_f.weight"));
  model.lnf_b.copy_(get("ln_f.bias"));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LocalistLayer& L = *model.layers[l];
    const std::string p = "h." + std::to_string(l) + ".";
    L.ln1_w.copy_(get(p + "ln_1.weight"));
    L.ln1_b.copy_(get(p + "ln_1.bias"));
    const auto w = get(p + "attn.c_attn.weight"), b = get(p + "attn.c_attn.bias");  // (d, 3d), (3d)
    for (int64_t which = 0; which < 3; ++which) {  // q, k, v: the source's heads are the first slots' heads
      L.qkv_w.narrow(0, which * S, width).copy_(w.narrow(1, which * d, d).t());
      L.qkv_b.narrow(0, which * S, width).copy_(b.narrow(0, which * d, d));
    }
    L.out_w.zero_();  // slots beyond the source's heads add nothing until they are trained
    L.out_w.narrow(1, 0, width).copy_(get(p + "attn.c_proj.weight").t());
    L.out_b.copy_(get(p + "attn.c_proj.bias"));
    L.ln2_w.copy_(get(p + "ln_2.weight"));
    L.ln2_b.copy_(get(p + "ln_2.bias"));
    L.fc_w.copy_(get(p + "mlp.c_fc.weight").t());
    L.fc_b.copy_(get(p + "mlp.c_fc.bias"));
    L.proj_w.copy_(get(p + "mlp.c_proj.weight").t());
    L.proj_b.copy_(get(p + "mlp.c_proj.bias"));
  }
  return {dir, static_cast<int64_t>(expected_tensors(c, model.vocab_size()).size()) + 1, heads};
}

}  // namespace localist
