// SPDX-License-Identifier: Apache-2.0
// hf_import.h: `model.init_from: {format: hf, path: DIR}` — a Hugging Face GPT-2-family
// directory (config.json + model.safetensors, as transformers writes GPT2LMHeadModel) as
// a localist model's starting weights (docs/import.md). The source's n_head heads become
// the first n_head / heads_per_block block slots, head h the (h mod h_b)-th head of slot
// h / h_b; the router, the anchors and the slots beyond keep localist's initialisation
// (free slots with zero output projections), so at λ = 0 the model computes the source.
// Limits: GPT-2's architecture (learned positions, pre-LayerNorm, Conv1D, tied head).
#pragma once
#include <cstdint>
#include <string>

#include "model/localist_model.h"

namespace localist {

struct HfImportSummary {
  std::string source;  // the directory
  int64_t tensors = 0;
  int64_t heads = 0;  // the source's heads = imported blocks x heads_per_block
};

// Checks config.json and model.safetensors' header against the model section and the
// vocabulary without reading the weights: a ConfigError naming the file and the key or
// tensor for anything that does not fit (another architecture, a missing tensor, a shape,
// a head count that heads_per_block does not divide, GELU or LayerNorm ε not configured).
void hf_import_check(const ModelConfig& config, int64_t vocab_size, const std::string& dir);
// hf_import_check, then the weights into `model` (whole, on the CPU).
HfImportSummary hf_import_gpt2(LocalistModel& model, const std::string& dir);

}  // namespace localist
