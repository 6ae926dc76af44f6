// SPDX-License-Identifier: Apache-2.0
// metrics_writer.cpp: see metrics_writer.h.
#include "core/metrics_writer.h"

#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/file_util.h"

namespace localist {

MetricsWriter::MetricsWriter(const std::string& path) : path_(path), out_(path, std::ios::app) {
  if (!out_) throw Error(path + ": cannot open metrics file for writing");
}

void MetricsWriter::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
  if (!out_) throw Error(path_ + ": metrics write failed (disk full?)");
}

bool metrics_record_precedes_checkpoint(const nlohmann::json& r, int64_t step) {
  if (!r.is_object() || !r.contains("step") || !r["step"].is_number_integer()) return true;
  const int64_t s = r["step"].get<int64_t>();
  return r.value("event", std::string()) == "eval" ? s <= step : s < step;
}

MetricsCut metrics_cut_to_checkpoint(const std::string& path, int64_t step) {
  MetricsCut cut;
  if (!std::filesystem::exists(path)) return cut;
  std::istringstream in(read_file(path));
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const nlohmann::json r = nlohmann::json::parse(line, nullptr, false);
    if (r.is_discarded() || !metrics_record_precedes_checkpoint(r, step)) {
      ++cut.dropped;
      continue;
    }
    kept += line + '\n';
    ++cut.kept;
  }
  write_file_atomic(path, kept);
  return cut;
}

}  // namespace localist
