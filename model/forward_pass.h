// SPDX-License-Identifier: Apache-2.0
// forward_pass.h: the one path from token windows to a loss that training, recruitment
// probes and trials, evaluation and generation share: the rule masks of the rows (M6),
// the forward with them, and the cross-entropy over non-padding targets in nats.
// Limits: the rows' domains are the caller's to choose (training may hide a tag);
// bf16 autocast runs on the pass's device (CUDA or CPU); the logits are cast back to float32.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "model/localist_model.h"
#include "model/rules.h"

namespace localist {

struct PassSpec {
  const RuleSet* rules = nullptr;                         // null or empty: no rules
  const std::vector<std::string>* token_texts = nullptr;  // each id's bytes (needed with rules)
  at::Device device = at::kCPU;
  bool bf16 = false;      // autocast the forward in bf16 (CUDA or CPU)
  int64_t pad_id = -100;  // targets equal to it carry no loss
};

struct ForwardPass {
  ForwardResult result;
  // float32 on the device: a scalar (mean) or (B*T) per token; undefined without
  // targets. Sequence parallel: this rank's share of the mean (the shares add up to it),
  // per token its own positions (BlockShard::seq_range); vocabulary parallel: the whole
  // mean, or every position, on every rank (ce_whole).
  at::Tensor ce;
  bool ce_whole = false;
};

enum class PassLoss { kNone, kMean, kPerToken };

// inputs and targets: (B,T) int64 on the CPU (targets ignored with kNone); domains: one
// per row (used by domain patterns).
ForwardPass forward_with_rules(LocalistModel& model, const at::Tensor& inputs, const at::Tensor& targets,
                               const std::vector<std::string>& domains, ForwardOptions options, const PassSpec& spec,
                               PassLoss loss);

}  // namespace localist
