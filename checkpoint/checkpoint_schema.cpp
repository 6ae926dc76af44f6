// SPDX-License-Identifier: Apache-2.0
// checkpoint_schema.cpp: see checkpoint_schema.h.
#include "checkpoint/checkpoint_schema.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <regex>

#include "core/error.h"
#include "core/sha256.h"
#include "parallel/block_slots.h"

namespace localist {
namespace fs = std::filesystem;

const char* const kCheckpointFormatName = "localist-checkpoint";
const std::vector<std::string> kCheckpointBlockParams{"qkv_weight", "qkv_bias", "out_weight"};

std::string checkpoint_slash_path(std::string key) {
  std::replace(key.begin(), key.end(), '.', '/');
  return key;
}

bool checkpoint_is_block_name(const std::string& key) {
  for (const auto& b : kCheckpointBlockParams) {
    if (key.size() > b.size() && key.compare(key.size() - b.size(), b.size(), b) == 0 &&
        key[key.size() - b.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

std::string checkpoint_step_dir_name(int64_t step) { return fmt::format("step-{:08d}", step); }

// The three block tensors of one layer in checkpoint form: (3,n,d), (3,n), (d,n) views
// of the block at `row` (its slot in a whole layer; LocalistLayer::row).
std::vector<at::Tensor> checkpoint_block_parts(const at::Tensor& w, const at::Tensor& b, const at::Tensor& o,
                                               const ModelConfig& c, int64_t row) {
  const auto v = block_slot_views(w, b, o, c, row);
  return {at::stack({v[0], v[1], v[2]}), at::stack({v[3], v[4], v[5]}), v[6]};
}

// Writes `parts` (checkpoint form) into the views of w, b, o at `row`.
void checkpoint_block_assign(const at::Tensor& w, const at::Tensor& b, const at::Tensor& o, const ModelConfig& c,
                             int64_t row, const std::vector<at::Tensor>& parts, const std::string& where) {
  auto v = block_slot_views(w, b, o, c, row);
  for (int j = 0; j < 3; ++j) {
    if (parts[0].dim() != 3 || parts[0].size(0) != 3 || parts[0][j].sizes() != v[j].sizes() || parts[1].dim() != 2 ||
        parts[1][j].sizes() != v[3 + j].sizes() || parts[2].sizes() != v[6].sizes()) {
      throw Error(where +
                  ": block tensors have another shape than this model's (was it trained with another "
                  "d_model, heads_per_block or head_dim?)");
    }
    v[j].copy_(parts[0][j]);
    v[3 + j].copy_(parts[1][j]);
  }
  v[6].copy_(parts[2]);
}

torch::optim::AdamWParamState* checkpoint_adam_state(torch::optim::AdamW& opt, const at::Tensor& p) {
  const auto it = opt.state().find(static_cast<void*>(p.unsafeGetTensorImpl()));
  return it == opt.state().end() ? nullptr : static_cast<torch::optim::AdamWParamState*>(it->second.get());
}

std::string checkpoint_block_prefix(const char* kind, const std::string& llm, int64_t slot, size_t layer) {
  return fmt::format("{}/{}/block/{}/layer{}/", kind, llm, slot, layer);
}

// Committed checkpoints (step directories with an index) under root, newest first.
std::vector<std::pair<int64_t, fs::path>> checkpoint_committed(const fs::path& root) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return found;
  const std::regex name("step-(\\d+)");
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::smatch m;
    const std::string n = e.path().filename().string();
    if (std::regex_match(n, m, name) && fs::exists(e.path() / "index.h5"))
      found.emplace_back(std::stoll(m[1]), e.path());
  }
  std::sort(found.rbegin(), found.rend());
  return found;
}

// NOTE(index checksum): the index holds every other file's SHA-256 but cannot hold its
// own; it carries a SHA-256 of its content instead (every attribute and dataset in name
// order), so a changed byte in the config, state or block map is caught too.
std::string checkpoint_index_digest(const TensorFileAttrs& attrs,
                                    const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::string text;
  for (const auto& [k, v] : attrs) {
    if (k != "index_sha256") text += k + "=" + std::to_string(v.size()) + ":" + v + "\n";
  }
  auto sorted = tensors;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [k, t_in] : sorted) {
    const auto t = t_in.contiguous();
    text += k + "=" + std::to_string(t.numel() * t.element_size()) + ":";
    text.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  }
  return sha256_hex(text);
}

}  // namespace localist
