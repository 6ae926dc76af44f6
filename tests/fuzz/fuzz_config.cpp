// SPDX-License-Identifier: Apache-2.0
// fuzz_config.cpp: the whole run config (strict YAML, every section) from arbitrary text.
#include "core/error.h"
#include "launch/run_config.h"
#include "tests/fuzz/fuzz_target.h"

LOCALIST_FUZZ_TARGET(config) {
  try {
    localist::run_config_parse(localist::fuzz::text_of(data, size), "fuzz.yaml", 1 + (size % 4));
  } catch (const localist::Error&) {
  }
  return 0;
}
