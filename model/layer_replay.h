// SPDX-License-Identifier: Apache-2.0
// layer_replay.h: one layer run without keeping its activations for backward
// (`train.activation_checkpointing`): forward under no-grad keeps only the layer's
// input; backward replays the layer — with the same dropout generator state and the
// same autocast setting — and back-propagates through the replay. Same values as the
// plain path, bit for bit on CPU; costs about one more forward of each layer per step.
// Limits: the layer function must be deterministic given its input and generator.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

namespace localist {

// A layer: input x -> outputs {x_next, extras...} (extras: per-layer scalars such as
// Ω and I_π that enter the loss). It may read tensors it captured (rule masks, the
// anchors) but gradients flow only to x and to `params`.
using LayerFunction = std::function<std::vector<at::Tensor>(const at::Tensor& x)>;

// Runs `layer` on x keeping only x (and the generator state) for backward; returns its
// outputs, connected to x and `params` for autograd.
std::vector<at::Tensor> checkpointed_layer(LayerFunction layer, const at::Tensor& x,
                                           const std::vector<at::Tensor>& params);

}  // namespace localist
