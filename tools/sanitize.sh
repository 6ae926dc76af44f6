#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# sanitize.sh: the unit and multi-rank tests under AddressSanitizer + UndefinedBehavior-
# Sanitizer, and the tests that run threads (the asynchronous checkpoint writer, the
# in-process rank double) under ThreadSanitizer. Usage: tools/sanitize.sh [asan|tsan|all]
# Builds build-asan/ and build-tsan/ with the system compiler (every localist library
# instrumented; LibTorch, OpenMPI and HDF5 are not, their own leaks and thread pools are
# suppressed by tests/sanitizers/*.supp). Prints one line per run; exit 0 when clean.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
jobs=${JOBS:-2}
root=$(pwd)
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 LOCALIST_SOURCE_DIR="$root"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1
status=0
configure() {  # dir flags
  if [ ! -f "$1/build.ninja" ]; then
    cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOCALIST_BUILD_BENCH=OFF \
      -DCMAKE_CXX_FLAGS="$2" -DCMAKE_C_FLAGS="$2" -DCMAKE_EXE_LINKER_FLAGS="$2" -DCMAKE_SHARED_LINKER_FLAGS="$2" >/dev/null
  fi
}
if [ "$what" = asan ] || [ "$what" = all ]; then
  configure build-asan "-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  cmake --build build-asan -j "$jobs"
  # LibTorch is not instrumented: container-overflow annotations would misfire across it.
  export ASAN_OPTIONS="detect_container_overflow=0:detect_leaks=1:abort_on_error=1"
  export LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export LOCALIST_BIN="$root/build-asan/localist"
  start=$(date +%s)
  # Leaks are checked in the single-process tests; under mpirun OpenMPI's and PMIx's
  # plugins leave allocations whose frames LeakSanitizer cannot name (unloaded modules),
  # so the multi-rank tests run with every other ASan and UBSan check but no leak check.
  if (cd build-asan && ctest -L unit --output-on-failure -j "$jobs" >"$root/build-asan/sanitize.log" 2>&1) &&
     (cd build-asan && ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" ctest -L mpi --output-on-failure -j "$jobs" \
        >>"$root/build-asan/sanitize.log" 2>&1); then
    echo "asan+ubsan: unit and mpi tests clean ($(grep -o 'out of [0-9]*' build-asan/sanitize.log | awk '{s += $3} END {print s}') tests, $(( $(date +%s) - start )) s)"
  else
    echo "asan+ubsan: FAILED, see build-asan/sanitize.log"; status=1
  fi
  unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
fi
if [ "$what" = tsan ] || [ "$what" = all ]; then
  configure build-tsan "-fsanitize=thread -fno-omit-frame-pointer"
  cmake --build build-tsan -j "$jobs" --target localist_unit_tests localist_model_tests
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/sanitizers/tsan.supp"
  start=$(date +%s)
  # The threads: the asynchronous checkpoint writer and the in-process N-rank double.
  if build-tsan/tests/localist_model_tests --gtest_filter='Checkpoint.*' >build-tsan/sanitize.log 2>&1 &&
     build-tsan/tests/localist_unit_tests --gtest_filter='InProcessGroup.*' >>build-tsan/sanitize.log 2>&1; then
    echo "tsan: threaded tests clean ($(grep -c '^\[       OK \]' build-tsan/sanitize.log) tests, $(( $(date +%s) - start )) s)"
  else
    echo "tsan: FAILED, see build-tsan/sanitize.log"; status=1
  fi
fi
exit $status
