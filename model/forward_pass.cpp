// SPDX-License-Identifier: Apache-2.0
// forward_pass.cpp: see forward_pass.h.
#include "model/forward_pass.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

namespace localist {
namespace {

// bf16 autocast on the pass's device type (CUDA or CPU) for the forward only; the
// previous state comes back however the forward ends.
class Bf16Autocast {
 public:
  Bf16Autocast(bool on, at::DeviceType type) : on_(on), type_(type) {
    if (!on_) return;
    was_enabled_ = at::autocast::is_autocast_enabled(type_);
    was_dtype_ = at::autocast::get_autocast_dtype(type_);
    at::autocast::set_autocast_enabled(type_, true);
    at::autocast::set_autocast_dtype(type_, at::kBFloat16);
  }
  ~Bf16Autocast() {
    if (!on_) return;
    at::autocast::set_autocast_enabled(type_, was_enabled_);
    at::autocast::set_autocast_dtype(type_, was_dtype_);
    if (!was_enabled_) at::autocast::clear_cache();
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool on_;
  at::DeviceType type_;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};

}  // namespace

ForwardPass forward_with_rules(LocalistModel& model, const at::Tensor& inputs, const at::Tensor& targets,
                               const std::vector<std::string>& domains, ForwardOptions options, const PassSpec& spec,
                               PassLoss loss) {
  const bool with_rules = spec.rules && !spec.rules->empty();
  RuleMasks masks;
  if (with_rules) {
    static const std::vector<std::string> no_texts;
    masks = spec.rules->masks(inputs, domains, spec.token_texts ? *spec.token_texts : no_texts, spec.device);
  }
  options.rules = with_rules ? &masks : nullptr;
  ForwardPass out;
  {
    const Bf16Autocast autocast(spec.bf16, spec.device.type());
    out.result = model.forward(inputs.to(spec.device), options);
  }
  if (loss == PassLoss::kNone) return out;
  const auto logits = out.result.logits.to(at::kFloat);
  const auto all_targets = targets.to(spec.device);
  if (options.shard && options.shard->vocab_parallel()) {
    // This rank's vocabulary rows of every position: the whole window's loss, on every rank.
    const auto per_token = options.shard->vocab_cross_entropy(logits, all_targets, spec.pad_id);
    out.ce = loss == PassLoss::kPerToken ? per_token.reshape({-1})
                                         : per_token.sum() / all_targets.ne(spec.pad_id).sum().to(at::kFloat);
    out.ce_whole = true;
    return out;
  }
  if (options.shard && options.shard->sequence_parallel()) {
    // This rank's positions: its share of the mean over the window's non-padding targets,
    // or their per-token losses.
    const auto [t0, t1] = options.shard->seq_range(all_targets.size(1));
    const auto mine = all_targets.narrow(1, t0, t1 - t0).reshape({-1});
    const auto flat = logits.reshape({-1, logits.size(-1)});
    out.ce = loss == PassLoss::kPerToken ? at::cross_entropy_loss(flat, mine, {}, at::Reduction::None, spec.pad_id)
                                         : at::cross_entropy_loss(flat, mine, {}, at::Reduction::Sum, spec.pad_id) /
                                               all_targets.ne(spec.pad_id).sum().to(at::kFloat);
    return out;
  }
  out.ce = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), all_targets.reshape({-1}), {},
                                  loss == PassLoss::kMean ? at::Reduction::Mean : at::Reduction::None, spec.pad_id);
  return out;
}

}  // namespace localist
