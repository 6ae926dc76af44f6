// SPDX-License-Identifier: Apache-2.0
// block_slots.h: views of one block slot's state in a layer — its parameters, their
// gradients and their AdamW moments — in one fixed order, so that block moves,
// recruitment trials, moment resets and checkpoints all cut a slot the same way.
// A view shares storage with the layer's tensor (k_max slots preallocated, or the
// rows a block-parallel rank holds).
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "model/localist_model.h"

namespace localist {

// Views of the block at `row` of one layer's block tensors (the slot itself when they
// hold every slot; LocalistLayer::row otherwise), in a fixed order: the q, k and v rows
// of qkv_w, then of qkv_b, then the columns of out_w (7 views). Works on any tensors of
// those shapes: parameters, gradients or optimizer moments.
std::vector<at::Tensor> block_slot_views(const at::Tensor& qkv_w, const at::Tensor& qkv_b, const at::Tensor& out_w,
                                         const ModelConfig& c, int64_t row);

// The optimizer's per-parameter moment tensors (exp_avg, exp_avg_sq; same shape as the
// parameter), empty before the optimizer's first step.
using MomentsOf = std::function<std::vector<at::Tensor>(const at::Tensor& param)>;

// The slot's views of one block tensor alone (which: 0 qkv_w, 1 qkv_b, 2 out_w): three
// for qkv_w and qkv_b (q, k, v), one for out_w; the same views block_slot_views cuts.
std::vector<at::Tensor> block_slot_views_of(const at::Tensor& t, int which, const ModelConfig& c, int64_t row);

// The slot's 7 parameter views of `layer` (at the row the layer holds it).
std::vector<at::Tensor> block_slot_params(const LocalistLayer& layer, const ModelConfig& c, int64_t slot);
// The slot's 7 gradient views of `layer` (every block tensor's .grad must be defined).
std::vector<at::Tensor> block_slot_grads(const LocalistLayer& layer, const ModelConfig& c, int64_t slot);
// The slot's moment views of `layer`: the 7 of exp_avg, then the 7 of exp_avg_sq; empty
// while any of the three block tensors has no optimizer state yet.
std::vector<at::Tensor> block_slot_moments(const LocalistLayer& layer, const ModelConfig& c, int64_t slot,
                                           const MomentsOf& moments);

}  // namespace localist
