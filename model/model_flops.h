// SPDX-License-Identifier: Apache-2.0
// model_flops.h: the model FLOPs of training on one token (PaLM, appendix B): 6 per
// weight of a matrix product (2 forward, 4 backward) — attention's q/k/v and output, the
// router and anchors, the FFN, the LM head — plus 12·L·A·T for attention's scores and
// weighted values over the context (A = active blocks · h_b · d_h). Limits: biases, norms,
// softmax and the locality bias are not counted, nor activation checkpointing's replay
// (model FLOPs, not hardware FLOPs), nor causal masking's saving (the usual convention).
#pragma once
#include <cstdint>

#include "model/model_config.h"

namespace localist {

double model_flops_per_token(const ModelConfig& m, int64_t active_blocks, int64_t vocab);

}  // namespace localist
