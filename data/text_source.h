// SPDX-License-Identifier: Apache-2.0
// text_source.h: reads a UTF-8 text file for shard preparation, rejects what cannot
// be a corpus (missing, empty, invalid UTF-8 with its line and byte offset), and
// splits it into documents without dropping a byte: the documents concatenate back
// to the file. Limits: the whole file is held in memory.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace localist {

// Byte offset of the first invalid UTF-8 sequence, or -1 if `text` is valid UTF-8
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
int64_t utf8_first_invalid(const std::string& text);

// Document start offsets (first is 0) for a split mode: "file" (one document),
// "blank_line" (a new document after each run of blank lines), "wikitext" (a new
// document at each top-level " = Title = " heading line).
std::vector<size_t> split_documents(const std::string& text, const std::string& mode);

struct TextSource {
  std::string path;
  std::string text;
  std::vector<size_t> document_starts;
};

// Reads and validates `path`; throws localist::Error with a one-line message.
TextSource text_source_read(const std::string& path, const std::string& split_mode);

}  // namespace localist
