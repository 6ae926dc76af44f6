// SPDX-License-Identifier: Apache-2.0
// byte_level.h: GPT-2's byte-level layer, shared by the BPE tokenizer and the export:
// the printable stand-in character of every byte, and the pre-tokenizer that splits
// text into the pieces BPE merges within (GPT-2's regex, as Hugging Face tokenizers runs it).
// Limits: the regex runs on RE2's Unicode tables (tokenizers uses Oniguruma's), so letters
// and digits assigned in a newer Unicode version than the system's RE2 may split differently.
#pragma once
#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace localist {

// The UTF-8 text of each byte's stand-in (bytes_to_unicode in GPT-2's encoder.py).
const std::array<std::string, 256>& byte_level_alphabet();

// Splits `text` into GPT-2 pre-tokenization pieces (views into `text`), appended to
// `out`; their concatenation is `text`. GPT-2's pattern is
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with \s as Oniguruma's (U+0009..U+000D, U+0085, Z*). Bytes that are not part of
// well-formed UTF-8 (which tokenizers never sees: it takes Unicode strings) are pieces
// of one byte each, and the valid text between them is split on its own.
void byte_level_pretokenize(std::string_view text, std::vector<std::string_view>& out);

}  // namespace localist
