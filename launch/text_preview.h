// SPDX-License-Identifier: Apache-2.0
// text_preview.h: a printable one-line preview of text for the command's output (the dry
// run's first row, generate's attention table, inspect's first text): newlines and tabs
// escaped, cut at `max` bytes. Limits: cuts bytes, so a UTF-8 character may be split.
#pragma once
#include <string>

namespace localist {

inline std::string text_preview(const std::string& text, size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else
      out += c;
  }
  return out;
}

}  // namespace localist
