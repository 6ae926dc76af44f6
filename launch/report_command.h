// SPDX-License-Identifier: Apache-2.0
// report_command.h: `localist report`: opens a checkpoint (every file's checksum
// verified), takes the windows to show (a text file, or the held-out windows), decides
// in a pool which LLM serves each window, builds the report (report/) and writes
// DIR/report.html and DIR/report.json. Everything is checked before anything is
// written: a bad checkpoint, text or argument leaves no file behind.
#pragma once
#include <cstdint>
#include <string>

namespace localist {

struct ReportArgs {
  std::string checkpoint, text_path, dial, sweep = "0:1:0.1", rules_path, domain, llm, out_dir, device = "auto";
  int64_t windows = 0;         // held-out windows per held-out source (0: train.eval_windows)
  int64_t max_tokens = 16384;  // a text longer than this is refused
  double fidelity_threshold = 0.5;
  int64_t route_prefix = 16;
  std::string command;  // the command line, recorded in the report
};

int run_report(const ReportArgs& args);

}  // namespace localist
