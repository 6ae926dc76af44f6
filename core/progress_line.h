// SPDX-License-Identifier: Apache-2.0
// progress_line.h: the one-line live progress display of rank 0. On a terminal it
// rewrites one line in place; when stderr is a file or pipe (CI, Slurm logs) it
// prints a plain line at most every `plain_interval_s` seconds instead.
#pragma once
#include <chrono>
#include <string>

namespace localist {

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled, double plain_interval_s = 10.0);
  ~ProgressLine();
  void update(const std::string& text);
  void finish();  // ends the live line (idempotent)

 private:
  bool enabled_;
  bool tty_;
  bool open_ = false;
  double plain_interval_s_;
  std::chrono::steady_clock::time_point last_;
  bool printed_once_ = false;
};

}  // namespace localist
