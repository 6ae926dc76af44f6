// SPDX-License-Identifier: Apache-2.0
// generate.h: sampling from a trained model at a chosen dial (temperature, top-k),
// optionally reporting for each generated token its block (last layer's hard routing)
// and the earlier positions it attended to most (gate-weighted over heads).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/localist_model.h"
#include "model/rules.h"

namespace localist {

struct GenerateOptions {
  std::vector<double> dial;  // per layer
  double temperature = 1.0;
  int64_t top_k = 0;  // 0: the whole vocabulary
  int64_t max_tokens = 200;
  int64_t top_positions = 3;
  uint64_t seed = 0;
  const RuleSet* rules = nullptr;
  std::string domain;  // for domain rules
};

struct GeneratedToken {
  uint32_t id = 0;
  int64_t block_slot = -1;                           // slot id of the token's block (last layer)
  std::vector<std::pair<int64_t, double>> attended;  // (position, weight), most attended first
};

std::vector<GeneratedToken> generate(LocalistModel& model, const std::vector<uint32_t>& prompt,
                                     const GenerateOptions& options, const std::vector<std::string>& token_texts,
                                     const at::Device& device);

}  // namespace localist
