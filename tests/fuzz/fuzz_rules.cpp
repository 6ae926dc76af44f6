// SPDX-License-Identifier: Apache-2.0
// fuzz_rules.cpp: a rules file (M6) from arbitrary text, then its masks over a window
// made of the input's own first bytes (byte tokens), so regexes and patterns run.
#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "model/rules.h"
#include "tests/fuzz/fuzz_target.h"

LOCALIST_FUZZ_TARGET(rules) {
  static const std::vector<std::string> texts = localist::ByteTokenizer().token_texts();
  try {
    const localist::RuleSet rules = localist::RuleSet::parse(localist::fuzz::text_of(data, size), "fuzz.yaml", 8);
    const int64_t n = static_cast<int64_t>(std::min<size_t>(size, 48));
    if (n > 0) {
      std::vector<int64_t> ids(data, data + n);
      const auto tokens = at::tensor(ids, at::kLong).view({1, n});
      rules.masks(tokens, {"drama"}, texts, at::kCPU);
    }
  } catch (const localist::Error&) {
  }
  return 0;
}
