// SPDX-License-Identifier: Apache-2.0
// optimizer_state.h: what a checkpoint stores of an optimizer that is not torch's own
// AdamW (ZeRO's sharded moments, parallel/zero_optimizer.h), behind one small interface
// (torchtitan's Stateful objects are the model): the checkpoint code asks which
// parameters it keeps and hands it their whole moments, and knows nothing else of it.
// Limits: loading only; writing reads whole states gathered by their owner beforehand.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>

namespace localist {

// One parameter's whole AdamW state (undefined tensors before its first step).
struct FullMoments {
  at::Tensor exp_avg, exp_avg_sq;
  int64_t step = 0;
  at::Tensor param;  // the whole parameter when this rank holds a part (block-parallel FFN); else undefined
};

class OptimizerState {
 public:
  virtual ~OptimizerState() = default;
  // Whether this optimizer keeps p's moments.
  virtual bool keeps(const at::Tensor& p) const = 0;
  // Installs the whole moments of the parameters it keeps, keyed by the parameter's
  // TensorImpl; a parameter missing from `state` has no state yet.
  virtual void load_moments(const std::map<const void*, FullMoments>& state) = 0;
};

}  // namespace localist
