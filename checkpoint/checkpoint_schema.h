// SPDX-License-Identifier: Apache-2.0
// checkpoint_schema.h: the names and layout shared by the checkpoint writer and reader
// (docs/checkpoint-format.md): dataset paths by global identity, the block form of a
// slot's tensors, the index's own digest, and which step directories are committed.
// Internal to trainer/; users go through checkpoint.h and checkpoint_writer.h.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint/tensor_file.h"
#include "model/model_config.h"

namespace torch::optim {
class AdamW;
struct AdamWParamState;
}  // namespace torch::optim

namespace localist {

// 2: a pool of LLMs (per-LLM block maps, recruitment logs and state; pool map). 1: main alone.
constexpr int64_t kCheckpointFormatVersion = 2;
extern const char* const kCheckpointFormatName;                // the "format" attribute of every file
extern const std::vector<std::string> kCheckpointBlockParams;  // qkv_weight, qkv_bias, out_weight

// "layers.0.norm1.weight" -> "layers/0/norm1/weight" (an HDF5 group path).
std::string checkpoint_slash_path(std::string key);
// Whether a parameter name is one of a layer's block-partitioned tensors.
bool checkpoint_is_block_name(const std::string& key);
std::string checkpoint_step_dir_name(int64_t step);
// "<kind>/<llm>/block/<slot>/layer<l>/" with kind "model" or "optim".
std::string checkpoint_block_prefix(const char* kind, const std::string& llm, int64_t slot, size_t layer);

// The three block tensors of one layer in checkpoint form: (3,n,d), (3,n), (d,n), of the
// block at `row` (its slot when the layer holds every slot; LocalistLayer::row).
std::vector<at::Tensor> checkpoint_block_parts(const at::Tensor& w, const at::Tensor& b, const at::Tensor& o,
                                               const ModelConfig& c, int64_t row);
// Writes `parts` (checkpoint form) into the views of w, b, o at `row`; throws naming `where`.
void checkpoint_block_assign(const at::Tensor& w, const at::Tensor& b, const at::Tensor& o, const ModelConfig& c,
                             int64_t row, const std::vector<at::Tensor>& parts, const std::string& where);

// The optimizer's state of p (null before its first step).
torch::optim::AdamWParamState* checkpoint_adam_state(torch::optim::AdamW& opt, const at::Tensor& p);

// SHA-256 of an index's content: every attribute but index_sha256 and every dataset, in name order.
std::string checkpoint_index_digest(const TensorFileAttrs& attrs,
                                    const std::vector<std::pair<std::string, at::Tensor>>& tensors);
// Committed checkpoints (step directories with an index) under root, newest first.
std::vector<std::pair<int64_t, std::filesystem::path>> checkpoint_committed(const std::filesystem::path& root);

}  // namespace localist
