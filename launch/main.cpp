// SPDX-License-Identifier: Apache-2.0
// main.cpp: entry point of the `localist` command; everything happens in cli_main. After a
// multi-rank job has ended (launch/job_end.h) the process leaves with _Exit: every file is
// closed by then, and the static teardown of LibTorch and MPI would only widen the window
// in which a rank stopped on its way out keeps mpirun waiting. OpenBLAS's workers are
// restarted with a short spin first (model/kernel_parallel.h), before any other thread runs.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "launch/cli.h"
#include "launch/job_end.h"
#include "model/kernel_parallel.h"

int main(int argc, char** argv) {
  localist::settle_blas_workers();
  const int rc = localist::cli_main(argc, argv);
  if (localist::job_end_skip_teardown()) {
    std::cout.flush();
    std::fflush(nullptr);
    std::_Exit(rc);
  }
  return rc;
}
