// SPDX-License-Identifier: Apache-2.0
// gpt2_export.h: `localist export --format gpt2`: one LLM's λ = 0 reading as a plain
// Hugging Face GPT-2 (GPT2LMHeadModel's config.json and model.safetensors, no remote code),
// the inverse of model.init_from (checkpoint/hf_import.h; docs/export.md says what is kept).
// Limits: the active blocks must be slots 0..K-1 whose K·h_b heads of d_h fill d_model
// exactly (GPT-2's n_embd = n_head · head_dim); the router, anchors and dial do not travel.
#pragma once
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "data/tokenizer.h"
#include "model/localist_model.h"

namespace localist {

struct Gpt2ExportSpec {
  const LocalistModel* model = nullptr;
  const Tokenizer* tokenizer = nullptr;
  std::string dtype = "fp32";  // fp32 | bf16
  std::string model_card;      // README.md
  nlohmann::json localist;     // config.json's "localist" record: LLM, step, provenance
};

// A ConfigError (one line, with the hint to use --format hf) when the model has no GPT-2
// reading: active slots that are not 0..K-1, heads that do not fill d_model, an
// activation GPT-2 does not name.
void gpt2_export_check(const LocalistModel& model);
// GPT-2's tensors (transformer.*, Conv1D layout) from the model's active heads.
std::vector<std::pair<std::string, at::Tensor>> gpt2_tensors(const LocalistModel& model);
nlohmann::json gpt2_config(const Gpt2ExportSpec& spec);
// Writes model.safetensors, config.json, generation_config.json, the tokenizer and
// README.md into the existing directory `dir`.
void gpt2_write_model(const Gpt2ExportSpec& spec, const std::string& dir);

}  // namespace localist
