// SPDX-License-Identifier: Apache-2.0
// stop_signal.cpp: see stop_signal.h.
#include "core/stop_signal.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace localist {
namespace {

std::atomic<int> g_pending{0};
std::atomic<bool> g_installed{false};
void (*g_reporter)() = nullptr;

}  // namespace

void stop_signal_write(const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w, n -= static_cast<size_t>(w);
  }
}

namespace {

void write_str(const char* s) { stop_signal_write(s); }

void on_stop(int sig) {
  const char* name = sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : "a stop signal";
  int expected = 0;
  if (!g_pending.compare_exchange_strong(expected, sig) && expected == sig) {
    write_str("localist: got ");
    write_str(name);
    write_str(" again; ending now\n");
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  write_str("localist: got ");
  write_str(name);
  if (g_reporter) g_reporter();
  write_str("; will checkpoint at the next step boundary and exit with status 75 (if every rank gets there)\n");
}

}  // namespace

void stop_signal_install() {
  if (g_installed.exchange(true)) return;
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

int stop_signal_pending() { return g_pending.load(); }
void stop_signal_set_reporter(void (*reporter)()) { g_reporter = reporter; }
void stop_signal_clear() { g_pending.store(0); }

}  // namespace localist
