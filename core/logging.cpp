// SPDX-License-Identifier: Apache-2.0
// logging.cpp: see logging.h.
#include "core/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "core/error.h"

namespace localist {

void check_log_level(const std::string& level) {
  if (spdlog::level::from_str(level) == spdlog::level::off && level != "off") {
    throw ConfigError("log level '" + level + "' is not one of: trace, debug, info, warn, error, off");
  }
}

void logging_init(const LogOptions& o) {
  check_log_level(o.level);
  const auto level = spdlog::level::from_str(o.level);
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_level(o.rank == 0 ? level : spdlog::level::warn);
  const std::string who = o.world_size > 1 ? "[rank " + std::to_string(o.rank) + "] " : "";
  console->set_pattern("%^%l%$ " + who + "%v");
  std::vector<spdlog::sink_ptr> sinks{console};
  if (!o.log_dir.empty()) {
    auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(
        o.log_dir + "/rank-" + std::to_string(o.rank) + ".log", /*truncate=*/false);
    file->set_level(spdlog::level::trace);
    file->set_pattern("%Y-%m-%dT%H:%M:%S.%e [rank " + std::to_string(o.rank) + "] [%l] %v");
    sinks.push_back(file);
  }
  auto logger = std::make_shared<spdlog::logger>("localist", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

void logging_shutdown() {
  if (auto l = spdlog::default_logger()) l->flush();
}

}  // namespace localist
