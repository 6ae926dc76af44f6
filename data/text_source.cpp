// SPDX-License-Identifier: Apache-2.0
// text_source.cpp: see text_source.h.
#include "data/text_source.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/file_util.h"

namespace localist {

int64_t utf8_first_invalid(const std::string& text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else
      return static_cast<int64_t>(i);
    if (i + len > n) return static_cast<int64_t>(i);
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return static_cast<int64_t>(i);
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    if (overlong || surrogate || cp > 0x10FFFF) return static_cast<int64_t>(i);
    i += len;
  }
  return -1;
}

namespace {

bool line_is_blank(const std::string& t, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    if (t[i] != ' ' && t[i] != '\t' && t[i] != '\r') return false;
  }
  return true;
}

// " = Title = " with exactly one '=' on each side (sub-headings have " = = ").
bool line_is_wikitext_title(const std::string& t, size_t begin, size_t end) {
  std::string line = t.substr(begin, end - begin);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  size_t a = line.find_first_not_of(' ');
  if (a == std::string::npos) return false;
  line = line.substr(a);
  return line.size() >= 5 && line.compare(0, 2, "= ") == 0 && line[2] != '=' &&
         line.compare(line.size() - 2, 2, " =") == 0 && line[line.size() - 3] != '=';
}

}  // namespace

std::vector<size_t> split_documents(const std::string& text, const std::string& mode) {
  std::vector<size_t> starts{0};
  if (mode == "file") return starts;
  if (mode != "blank_line" && mode != "wikitext") {
    throw ConfigError("document split mode '" + mode + "' is not one of: file, blank_line, wikitext");
  }
  bool saw_blank = false;
  bool saw_content = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const bool blank = line_is_blank(text, pos, end);
    if (mode == "blank_line") {
      if (blank) {
        saw_blank = true;
      } else {
        if (saw_blank && saw_content && pos != starts.back()) starts.push_back(pos);
        saw_blank = false;
        saw_content = true;
      }
    } else if (line_is_wikitext_title(text, pos, end)) {
      // Leading blank lines before the first title stay with the first document.
      if (saw_content && pos != starts.back()) starts.push_back(pos);
      saw_content = true;
    } else if (!blank) {
      saw_content = true;
    }
    pos = end + 1;
  }
  return starts;
}

TextSource text_source_read(const std::string& path, const std::string& split_mode) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    // The bundled pool configs read corpora that a script makes (not committed).
    const bool generated = path.find("corpora/generated/") != std::string::npos;
    throw Error(
        path + ": source file not found (check data.sources[].path; relative paths are taken from the " +
        "directory you run localist in" +
        (generated ? "; corpora/generated/ is made by tools/pool_corpora.sh, which tools/setup.sh runs)" : ")"));
  }
  if (!S_ISREG(st.st_mode)) throw Error(path + ": source is not a regular file");
  TextSource src;
  src.path = path;
  src.text = read_file(path);
  if (src.text.empty()) throw Error(path + ": source file is empty; remove it from data.sources");
  const int64_t bad = utf8_first_invalid(src.text);
  if (bad >= 0) {
    const int64_t line = 1 + std::count(src.text.begin(), src.text.begin() + bad, '\n');
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(src.text[bad]));
    throw Error(path + ":" + std::to_string(line) + ": invalid UTF-8 (byte " + hex + " at offset " +
                std::to_string(bad) + "); convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8");
  }
  src.document_starts = split_documents(src.text, split_mode);
  return src;
}

}  // namespace localist
