// SPDX-License-Identifier: Apache-2.0
// metrics_writer.h: machine-readable metrics as JSON lines, one object per line,
// flushed per line so a crash loses at most the line being written.
#pragma once
#include <nlohmann/json.hpp>

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

}  // namespace localist
