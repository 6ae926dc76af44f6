// SPDX-License-Identifier: Apache-2.0
// progress_line.cpp: see progress_line.h.
#include "core/progress_line.h"

#include <unistd.h>

#include <cstdio>

namespace localist {

ProgressLine::ProgressLine(bool enabled, double plain_interval_s)
    : enabled_(enabled), tty_(::isatty(STDERR_FILENO) != 0), plain_interval_s_(plain_interval_s) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(const std::string& text) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (printed_once_ && std::chrono::duration<double>(now - last_).count() < 0.1) return;
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    std::fflush(stderr);
    open_ = true;
  } else {
    if (printed_once_ && std::chrono::duration<double>(now - last_).count() < plain_interval_s_) return;
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  printed_once_ = true;
  last_ = now;
}

void ProgressLine::finish() {
  if (open_) {
    std::fprintf(stderr, "\n");
    open_ = false;
  }
}

}  // namespace localist
