// SPDX-License-Identifier: Apache-2.0
// stop_signal.h: SIGTERM and SIGUSR1 (what Slurm sends on preemption or before a time
// limit, what mpirun forwards) set a flag instead of killing the process; the trainer
// agrees on it with every rank at the next step boundary, checkpoints and exits with
// kExitStopped. A second signal of the same kind ends the process at once.
// Limits: POSIX signals; the handler only writes with write(2) and sets atomics.
#pragma once

namespace localist {

constexpr int kExitStopped = 75;  // stopped by a signal after writing a checkpoint (EX_TEMPFAIL)

// Installs the handlers (idempotent).
void stop_signal_install();
// 0, or the number of the first stop signal received.
int stop_signal_pending();
// Makes the handler also write what `reporter` writes (async-signal-safe code only),
// e.g. the collective this rank is waiting in.
void stop_signal_set_reporter(void (*reporter)());
// Writes `text` to stderr with write(2): usable inside a signal handler.
void stop_signal_write(const char* text);
// For tests: forget a pending signal.
void stop_signal_clear();

}  // namespace localist
