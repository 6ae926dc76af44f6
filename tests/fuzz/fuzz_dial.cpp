// SPDX-License-Identifier: Apache-2.0
// fuzz_dial.cpp: the --dial argument of eval, generate and report (value, list, sweep).
#include "core/error.h"
#include "launch/dial_arg.h"
#include "tests/fuzz/fuzz_target.h"

LOCALIST_FUZZ_TARGET(dial) {
  try {
    localist::dial_arg_parse(localist::fuzz::text_of(data, size));
  } catch (const localist::Error&) {
  }
  return 0;
}
