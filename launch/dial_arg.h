// SPDX-License-Identifier: Apache-2.0
// dial_arg.h: parses the `--dial` argument of eval and generate: one value ("0.6"),
// a list ("0,0.5,1") or a sweep lo:hi:step ("0:1:0.1", both ends included).
// Every value must lie in [0, 1]; anything else is a ConfigError quoting the text. And
// `--dial-profile`: uniform, linear, power:P or per-layer values v0,v1,... (the forms of
// train.dial_profile), which multiplies each λ layer by layer.
#pragma once
#include <string>
#include <vector>

#include "trainer/dial_schedule.h"

namespace localist {

std::vector<double> dial_arg_parse(const std::string& text);
DialProfile dial_profile_arg_parse(const std::string& text);

}  // namespace localist
