// SPDX-License-Identifier: Apache-2.0
// metric_fields.h: the one table of evaluation metrics (M7, M8) that every output reads:
// the JSON record (eval events, sweep.json), the sweep CSV's columns, the printed sweep
// table and the gnuplot script (which finds its columns by name). A metric added here
// appears everywhere it is marked for.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "model/metrics.h"

namespace localist {

struct MetricField {
  const char* name;                             // JSON key and CSV column
  nlohmann::json (*value)(const EvalMetrics&);  // the JSON value (a number, or a list for per-layer/block fields)
  bool csv = false;                             // a column of sweep.csv (numbers only)
  const char* label = nullptr;                  // a column of the sweep table, or null
  int width = 0, precision = 3;                 // its format there
  // Shown as "-" in the table when this says so (e.g. no rule fired).
  bool (*absent)(const EvalMetrics&) = nullptr;
};

// In CSV order; the fields that are not CSV columns follow.
const std::vector<MetricField>& metric_fields();
// 1-based column of `name` in sweep.csv; throws when it is not a CSV column.
int metric_csv_column(const std::string& name);

}  // namespace localist
