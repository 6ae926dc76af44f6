// forward_pass.cpp: see forward_pass.h.
#include "model/forward_pass.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

namespace localist {

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
  if (spec.bf16) {
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  }
  ForwardPass out;
  out.result = model.forward(inputs.to(spec.device), options);
  if (spec.bf16) at::autocast::set_enabled(false);
  if (loss == PassLoss::kNone) return out;
  const auto logits = out.result.logits.to(at::kFloat);
  out.ce = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), targets.to(spec.device).reshape({-1}), {},
                                  loss == PassLoss::kMean ? at::Reduction::Mean : at::Reduction::None, spec.pad_id);
  return out;
}

}  // namespace localist
