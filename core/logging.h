// SPDX-License-Identifier: Apache-2.0
// logging.h: rank-aware logging on spdlog. Rank 0 prints to stderr at the chosen
// level; other ranks print warnings and errors only (so N ranks do not flood the
// terminal), and every rank writes its full log to <log_dir>/rank-<r>.log.
#pragma once
#include <string>

namespace localist {

struct LogOptions {
  int rank = 0;
  int world_size = 1;
  std::string level = "info";  // trace, debug, info, warn, error
  std::string log_dir;         // empty: no file sink
};

// Replaces spdlog's default logger. Safe to call again (e.g. once the run dir exists).
void logging_init(const LogOptions& options);

// Flushes and drops the file sinks (call before exiting).
void logging_shutdown();

// Validates a level name; throws ConfigError listing the valid names.
void check_log_level(const std::string& level);

}  // namespace localist
