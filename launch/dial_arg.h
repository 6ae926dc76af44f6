// SPDX-License-Identifier: Apache-2.0
// dial_arg.h: parses the `--dial` argument of eval and generate: one value ("0.6"),
// a list ("0,0.5,1") or a sweep lo:hi:step ("0:1:0.1", both ends included).
// Every value must lie in [0, 1]; anything else is a ConfigError quoting the text.
#pragma once
#include <string>
#include <vector>

namespace localist {

std::vector<double> dial_arg_parse(const std::string& text);

}  // namespace localist
