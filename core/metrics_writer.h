// SPDX-License-Identifier: Apache-2.0
// metrics_writer.h: machine-readable metrics as JSON lines, one object per line,
// flushed per line so a crash loses at most the line being written; on resume the file
// is cut back to the checkpoint (one record per step, the resumed attempt's).
// Limits: one writer per file (the run's lead rank).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <string>

namespace localist {

class MetricsWriter {
 public:
  // Opens `path` for appending; throws localist::Error naming the path on failure.
  explicit MetricsWriter(const std::string& path);
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

// Whether a record was logged before the checkpoint of `step` was written: step records,
// recruitment and spawn decisions of steps before it (a round at `step` runs after the
// checkpoint), held-out evaluations at `step` or before (the one at `step` precedes its
// checkpoint), and records of no step (run-level: memory, timing).
bool metrics_record_precedes_checkpoint(const nlohmann::json& record, int64_t step);

struct MetricsCut {
  int64_t kept = 0, dropped = 0;  // records; dropped counts cut lines too (a kill mid-line)
};

// On resume from the checkpoint of `step`: rewrites `path` atomically with the records
// that precede the checkpoint, so that the steps an interrupted attempt logged after it
// appear once — as the resumed attempt logs them again. A missing file is left missing.
MetricsCut metrics_cut_to_checkpoint(const std::string& path, int64_t step);

}  // namespace localist
