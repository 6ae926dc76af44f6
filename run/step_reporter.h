// SPDX-License-Identifier: Apache-2.0
// step_reporter.h: a group's step record (logged steps) and rank 0's progress line (every
// step; a pool's shows every LLM's latest bits per token): the losses, where the step's
// wall time went (time_ms) and MFU — model FLOPs of the step (model/model_flops.h) over
// the group's ranks' peak (run/device_peak.h), null where the peak is unknown.
// Limits: MFU assumes every rank of a group has the lead's peak (homogeneous devices).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "comm/counting_communicator.h"
#include "core/progress_line.h"
#include "pool/pool_config.h"
#include "run/device_peak.h"
#include "run/train_loop.h"
#include "trainer/model_group.h"
#include "trainer/train_step.h"

namespace localist {

class StepReporter {
 public:
  // `comm` (may be null): the rank's counted collective bytes; each step record then
  // carries what each group got since this rank's previous record (`comm_bytes`).
  StepReporter(const PoolConfig& pool, bool lead, DevicePeak peak, std::shared_ptr<CommByteCounts> comm = nullptr);
  ProgressLine& progress() { return progress_; }
  void heard(const nlohmann::json& rec);  // rank 0: a step record from any rank
  nlohmann::json report(const ModelGroup& g, int64_t step, const StepStats& s, const std::vector<double>& dial,
                        double lr, const StepTime& time, bool log_step);

 private:
  const PoolConfig& pool_;
  ProgressLine progress_;
  std::vector<double> bits_;
  DevicePeak peak_;
  std::shared_ptr<CommByteCounts> comm_;
  std::map<std::string, int64_t> comm_seen_;
};

// The parts of a step's wall time as the record's `time_ms` object; `other` is what no
// part measured (other LLMs' steps on this rank, logging).
nlohmann::json step_time_json(const StepStats& s, const StepTime& t);

}  // namespace localist
