// SPDX-License-Identifier: Apache-2.0
// metrics_writer.cpp: see metrics_writer.h.
#include "core/metrics_writer.h"

#include "core/error.h"

namespace localist {

MetricsWriter::MetricsWriter(const std::string& path) : path_(path), out_(path, std::ios::app) {
  if (!out_) throw Error(path + ": cannot open metrics file for writing");
}

void MetricsWriter::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
  if (!out_) throw Error(path_ + ": metrics write failed (disk full?)");
}

}  // namespace localist
