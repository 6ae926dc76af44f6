# SPDX-License-Identifier: Apache-2.0
# Test registration helpers. Every test gets a label (unit, mpi, e2e, gpu) and a hard
# timeout, so a hang fails the test instead of stalling CI. MPI tests run under the
# real mpirun with the flags root and a 2-core machine need.
find_package(GTest REQUIRED)
find_program(TIMEOUT_PROGRAM timeout REQUIRED)

# Deterministic numerics in tests: one BLAS/OpenMP thread per process.
set(LOCALIST_TEST_ENV
  "OMP_NUM_THREADS=1" "OPENBLAS_NUM_THREADS=1"
  "LOCALIST_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  "LOCALIST_BIN=$<TARGET_FILE:localist>")

# localist_add_test_executable(NAME SOURCES ... LIBS ...): a GoogleTest binary.
function(localist_add_test_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR})
  target_compile_definitions(${name} PRIVATE LOCALIST_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
endfunction()

# localist_add_test(NAME TARGET LABEL TIMEOUT [SKIP_CODE n] [ARGS ...])
function(localist_add_test name)
  cmake_parse_arguments(ARG "" "TARGET;LABEL;TIMEOUT;SKIP_CODE" "ARGS" ${ARGN})
  add_test(NAME ${name}
    COMMAND ${TIMEOUT_PROGRAM} --kill-after=5 ${ARG_TIMEOUT} $<TARGET_FILE:${ARG_TARGET}> ${ARG_ARGS})
  math(EXPR hard "${ARG_TIMEOUT} + 15")
  set_tests_properties(${name} PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${hard}
    ENVIRONMENT "${LOCALIST_TEST_ENV}")
  if(ARG_SKIP_CODE)
    set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE ${ARG_SKIP_CODE})
  endif()
endfunction()

# localist_add_mpi_test(NAME TARGET NP TIMEOUT [ARGS ...]): runs the binary on NP ranks
# under mpirun. `timeout` signals mpirun, which takes its ranks down with it.
function(localist_add_mpi_test name)
  cmake_parse_arguments(ARG "" "TARGET;NP;TIMEOUT" "ARGS" ${ARGN})
  add_test(NAME ${name}_np${ARG_NP}
    COMMAND ${TIMEOUT_PROGRAM} --kill-after=5 ${ARG_TIMEOUT}
            ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ARG_NP} --oversubscribe
            $<TARGET_FILE:${ARG_TARGET}> ${ARG_ARGS})
  math(EXPR hard "${ARG_TIMEOUT} + 15")
  set_tests_properties(${name}_np${ARG_NP} PROPERTIES LABELS mpi TIMEOUT ${hard}
    PROCESSORS ${ARG_NP}
    ENVIRONMENT "${LOCALIST_TEST_ENV};OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;OMPI_MCA_mpi_yield_when_idle=1")
endfunction()
