// SPDX-License-Identifier: Apache-2.0
// report.h: the audit report (`localist report`): one self-contained HTML page and its
// JSON (docs/report.md has the schema) of how a checkpoint routes, attends and obeys its
// rules on a set of windows: the model card and training curves, the dial sweep, the
// blocks, the token view, the rules, the M8 bounds and the recruitment and pool log.
// Limits: the sections other than the token view are for llms[0]; in a pool each window's
// token view comes from the LLM that served it.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "model/localist_model.h"
#include "model/rules.h"
#include "report/token_view.h"
#include "trainer/evaluate.h"

namespace localist {

struct ReportLlm {
  std::string name;
  LocalistModel* model = nullptr;
  const RuleSet* rules = nullptr;  // the rules it answers with (may be null)
};

struct ReportSpec {
  const CheckpointContents* contents = nullptr;  // read and verified
  std::vector<ReportLlm> llms;                   // [0]: the LLM whose sections the page shows
  // The windows, in groups of one length each (a text's last window may be shorter);
  // windows are numbered through the groups in order.
  std::vector<EvalSet> windows;
  std::string windows_from;     // what they are, for the page ("text notes.txt", ...)
  std::vector<int> window_llm;  // per window: the index into llms serving it (empty: 0)
  nlohmann::json pool_routing;  // per window: which LLM served it and why (null: no pool)
  std::vector<double> dial;     // λ per layer for the token view, metrics and bounds
  std::vector<double> sweep;    // the dial section's values
  EvalInputs inputs;
  TokenViewOptions view;
  std::string rules_file;                            // "" without one
  nlohmann::json command = nlohmann::json::array();  // the command line, for the record
};

nlohmann::json report_build(const ReportSpec& spec);
// Writes DIR/report.json and DIR/report.html, each to a temporary name renamed into place.
std::vector<std::string> report_write(const nlohmann::json& report, const std::string& dir);
// JSON text as the report stores it: bytes that are not UTF-8 (a token that is part of
// a character) become U+FFFD.
std::string report_json_text(const nlohmann::json& j, int indent);

}  // namespace localist
