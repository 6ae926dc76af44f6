// SPDX-License-Identifier: Apache-2.0
// model_config.h: the typed `model:` section: shape of the localist transformer
// (DESIGN.md §1). Parsed and range-checked in launch/run_config.cpp, including
// M1's requirement anchor_dim >= ceil(log2 k_max).
#pragma once
#include <cstdint>
#include <string>

namespace localist {

struct ModelConfig {
  int64_t d_model = 128;  // residual width
  int64_t n_layers = 2;
  int64_t context = 128;        // tokens per training window
  int64_t heads_per_block = 1;  // h_b: heads owned by each semantic block in every layer
  int64_t head_dim = 32;        // d_h
  int64_t k_initial = 4;        // active semantic blocks at start
  int64_t k_max = 8;            // preallocated block slots
  int64_t anchor_dim = 8;       // d_a
  int64_t ffn_mult = 4;         // FFN hidden width = ffn_mult * d_model
  double dropout = 0.0;
  double tau = 1.0;    // routing temperature (M2)
  double gamma = 8.0;  // locality bias scale (M3)
  double rho = 4.0;    // rule pointer bias (M3/M6)
  // What a pretrained source computes differently (model.init_from, docs/import.md):
  // the FFN's GELU exact (erf) or tanh-approximated (GPT-2's gelu_new), LayerNorm's ε.
  std::string activation = "gelu";  // gelu | gelu_tanh
  double layer_norm_eps = 1e-5;
  // Weights to start from instead of random ones (a fresh run only; a resume reads its
  // checkpoint): format hf = a Hugging Face GPT-2-family directory (config.json +
  // model.safetensors). Empty path: random initialisation.
  struct InitFrom {
    std::string format = "hf";
    std::string path;
  } init_from;
};

}  // namespace localist
