// SPDX-License-Identifier: Apache-2.0
// train_step.h: one optimizer step of a model group (DESIGN.md §1 M5, §2): the rank's
// micro-batches of the global batch (loss CE + mean over layers of λ_l (μ Ω_l − ν I_π,l),
// dropout streams fixed by the micro-batch's place in the global batch), gradients summed
// over the data-parallel ranks while backward runs, the router's summed over the
// replica, the loss statistics averaged over the group, the global gradient norm clipped,
// and the AdamW step. Every micro-batch of the global batch weighs the same on any number
// of ranks, so the losses do not depend on the world size or on bp.
// Host reads: the step's statistics once after backward, the gradient norm once (it
// decides clipping); nothing per micro-batch, so a CUDA step runs without stalls.
#pragma once
#include <cstdint>
#include <vector>

#include "trainer/model_group.h"

namespace localist {

struct StepStats {
  double loss = 0, ce = 0;            // averaged over the group's ranks (CE in nats)
  double omega = 0, mutual_info = 0;  // mean over layers and micro-batches
  double max_share = 0;               // largest block share (bp 1, traced steps only)
  double grad_norm = 0;               // before clipping
  double comm_ms = 0;                 // communication that backward did not hide
  // Where the step's time went on this rank (comm_ms is the gradient sync's share). On
  // CUDA the device is synchronised at each boundary on traced (logged) steps only, so
  // other steps run without stalls and their split is not measured.
  double data_ms = 0, forward_ms = 0, backward_ms = 0, optimizer_ms = 0;
};

// Collective over the group's ranks. `trace`: compute block shares on the first micro-batch.
StepStats train_step(ModelGroup& group, int64_t step, const std::vector<double>& dial, double lr, bool trace);

}  // namespace localist
