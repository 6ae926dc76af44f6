// SPDX-License-Identifier: Apache-2.0
// model_card.h: the audit report's model card: what a checkpoint is (config, parameter
// counts, anchors, blocks initial and recruited with the decisions' numbers, the pool
// of LLMs and its log, files with verified checksums, the software that made the
// report, the method's sources) and how it was trained (curves and events from the
// run's metrics.jsonl, up to the checkpoint's step).
// Limits: the curves need the run directory beside the checkpoint (<run>/checkpoints/step-N).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "checkpoint/checkpoint.h"
#include "model/localist_model.h"

namespace localist {

// The card of LLM `llm` (`model` holds its weights) of checkpoint `c` (read and verified).
nlohmann::json report_model_card(const CheckpointContents& c, const std::string& llm, LocalistModel& model);
// Curves per LLM (step, loss, bits per token, mean λ, active blocks) and the recruitment
// and spawn events, from metrics.jsonl lines with step <= last_step (a resumed run's
// repeated steps: the last line wins). {"found": false, "path"} when the file is absent.
nlohmann::json report_training_curves(const std::string& metrics_path, int64_t last_step);
// The run's metrics.jsonl for a checkpoint directory <run>/checkpoints/step-N.
std::string report_metrics_path(const std::string& checkpoint_dir);

}  // namespace localist
