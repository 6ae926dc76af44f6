// SPDX-License-Identifier: Apache-2.0
// text_tokens.h: rows of text as a (rows, bytes) batch of byte ids, for model tests that
// feed readable windows. Limits: every row must have the same byte length.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace localist::test {

inline at::Tensor text_tokens(const std::vector<std::string>& rows) {
  std::vector<int64_t> ids;
  for (const auto& r : rows) {
    for (unsigned char ch : r) ids.push_back(ch);
  }
  return at::tensor(ids, at::kLong).view({static_cast<int64_t>(rows.size()), -1});
}

}  // namespace localist::test
