// SPDX-License-Identifier: Apache-2.0
// fault_injection.cpp: see fault_injection.h.
#include "run/fault_injection.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "core/error.h"

namespace localist {

FaultInjection fault_injection_from_env() {
  FaultInjection f;
  const char* v = std::getenv("LOCALIST_TEST_FAULT");
  if (!v || !*v) return f;
  char kind[16] = {0}, at[32] = {0};
  const int n = std::sscanf(v, "%15[a-z]:rank=%d:step=%lld:at=%31[a-z-]", kind, &f.rank,
                            reinterpret_cast<long long*>(&f.step), at);
  f.kind = kind;
  f.at = at;
  bool ok =
      (n == 3 && (f.kind == "stall" || f.kind == "kill" || f.kind == "signal")) || (n == 4 && f.kind == "ckptkill");
  if (f.kind == "exitstop") {
    at[0] = '\0';
    ok = std::sscanf(v, "exitstop:rank=%d:at=%31[a-z-]", &f.rank, at) == 2;
    f.at = at;
    ok = ok && (f.at == "end-barrier" || f.at == "finalize" || f.at == "exit");
  }
  if (!ok) {
    throw ConfigError(std::string("LOCALIST_TEST_FAULT='") + v +
                      "': expected stall|kill|signal:rank=R:step=S, ckptkill:rank=R:step=S:at=POINT or "
                      "exitstop:rank=R:at=end-barrier|finalize|exit");
  }
  return f;
}

int64_t forced_remap_step_from_env() {
  const char* v = std::getenv("LOCALIST_TEST_REMAP_STEP");
  if (!v || !*v) return -1;
  char* end = nullptr;
  const long long step = std::strtoll(v, &end, 10);
  if (*end != '\0' || step < 0) throw ConfigError(std::string("LOCALIST_TEST_REMAP_STEP='") + v + "': expected a step");
  return step;
}

void fault_maybe_trigger(const FaultInjection& f, int rank, int64_t step) {
  if ((f.kind != "stall" && f.kind != "kill" && f.kind != "signal") || f.rank != rank || f.step != step) return;
  if (f.kind == "signal") {
    spdlog::warn("LOCALIST_TEST_FAULT: rank {} sends itself SIGUSR1 at step {}", rank, step);
    std::raise(SIGUSR1);
    return;
  }
  spdlog::warn("LOCALIST_TEST_FAULT: rank {} {} at step {}", rank, f.kind == "kill" ? "killed" : "stalls", step);
  if (f.kind == "kill") std::raise(SIGKILL);
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

void fault_maybe_stop_at_exit(const FaultInjection& f, int rank, const std::string& point) {
  if (f.kind != "exitstop" || f.rank != rank || f.at != point) return;
  spdlog::warn("LOCALIST_TEST_FAULT: rank {} stops itself (SIGSTOP) at the job's end, point '{}'", rank, point);
  if (auto l = spdlog::default_logger()) l->flush();
  std::raise(SIGSTOP);
}

std::function<void(const std::string&)> fault_checkpoint_hook(const FaultInjection& f, int rank, int64_t step) {
  if (f.kind != "ckptkill" || f.rank != rank || f.step != step) return {};
  const std::string at = f.at;
  return [at](const std::string& point) {
    if (point != at) return;
    spdlog::warn("LOCALIST_TEST_FAULT: killed inside the checkpoint write at '{}'", point);
    std::raise(SIGKILL);
  };
}

}  // namespace localist
