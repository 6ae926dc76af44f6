// SPDX-License-Identifier: Apache-2.0
// hf_export.h: one localist LLM as a Hugging Face model directory (docs/export.md):
// model.safetensors (every parameter under the name modeling_localist.py gives it),
// config.json (the model section, anchors, active blocks, dial, domain routes, auto_map),
// generation_config.json, the tokenizer (byte-level: a tokenizer.json that reproduces
// localist's ids; SentencePiece: its model file and tokenization_localist.py), the model
// code and the model card.
// Limits: writes into a directory the caller made (hf_export_atomically commits it whole).
#pragma once
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "data/tokenizer.h"
#include "model/localist_model.h"
#include "model/rules.h"

namespace localist {

struct HfExportSpec {
  const LocalistModel* model = nullptr;
  std::string dtype = "fp32";              // fp32 | bf16: the parameters' type in model.safetensors
  std::vector<double> dial;                // λ per layer: config.json's default dial
  std::vector<DomainRoute> domain_routes;  // blocks recruited for a domain
  const Tokenizer* tokenizer = nullptr;
  std::string model_card;   // README.md
  nlohmann::json localist;  // config.json's "localist" record: LLM, step, version, commit
};

// The parameters under their exported names, in the model's dtype (whole model only).
std::vector<std::pair<std::string, at::Tensor>> hf_tensors(const LocalistModel& model);
// config.json's content for the spec.
nlohmann::json hf_config(const HfExportSpec& spec);
// Writes the model's files into the existing directory `dir`.
void hf_write_model(const HfExportSpec& spec, const std::string& dir);
// The tokenizer's files: byte-level and GPT-2's BPE as a tokenizer.json that transformers'
// own classes read; SentencePiece as its model file and tokenization_localist.py.
void hf_write_tokenizer(const Tokenizer& tokenizer, int64_t context, const std::string& dir);
// model.safetensors (the tensors in `dtype`: fp32 | bf16), generation_config.json and the
// tokenizer's files: what every exported format writes alike.
void hf_write_weights_and_tokenizer(std::vector<std::pair<std::string, at::Tensor>> tensors, const std::string& dtype,
                                    const Tokenizer& tokenizer, int64_t context, const std::string& dir);
// GPT-2's BPE has no padding token (localist's lies past the vocabulary): generation pads
// with the document token, as transformers does for GPT-2.
uint32_t hf_pad_token_id(const Tokenizer& tokenizer);
// Runs write(tmp) on a fresh temporary sibling of `out` and renames it to `out`; refuses an
// `out` that exists and is not an empty directory; removes the temporary on failure.
void hf_export_atomically(const std::string& out, const std::function<void(const std::string&)>& write);

// The Python sources of the exported model (embedded from export/hf at build time).
const std::string& hf_configuration_py();
const std::string& hf_modeling_py();
const std::string& hf_pool_py();
const std::string& hf_tokenization_py();

}  // namespace localist
