// SPDX-License-Identifier: Apache-2.0
// byte_level.cpp: see byte_level.h. RE2 has no lookahead, so `\s+(?!\S)|\s+` is one
// greedy whitespace alternative whose match gives its last character back when text
// follows (what the lookahead does: that character then starts the next piece, " word").
#include "data/byte_level.h"

#include <re2/re2.h>

#include "core/utf8.h"

namespace localist {
namespace {

// Oniguruma's \s in Unicode mode is [\t-\r\x{85}\p{Z}]; RE2's \s is ASCII only, so the
// class is spelled out. No capture group: RE2 then finds the match with its DFA alone.
constexpr const char* kPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\pL+| ?\pN+| ?[^\t-\r\x{85}\pZ\pL\pN]+|[\t-\r\x{85}\pZ]+)";

// The same class by code point: U+0009..U+000D, U+0085 and Z (Zs, Zl, Zp — unchanged
// since Unicode 6.3 took U+180E out).
bool is_space(char32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

// The code point of the well-formed UTF-8 character that starts at `s`.
char32_t decode_at(const unsigned char* s, size_t n) {
  if (n == 1) return s[0];
  char32_t c = s[0] & (0xFF >> (n + 1));
  for (size_t k = 1; k < n; ++k) c = (c << 6) | (s[k] & 0x3F);
  return c;
}

const re2::RE2& pattern() {
  static const re2::RE2 re(kPattern);  // RE2 is safe to share between threads once built
  return re;
}

size_t utf8_length(unsigned char lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

// Splits text that is well-formed UTF-8.
void split_valid(std::string_view text, std::vector<std::string_view>& out) {
  const re2::RE2& re = pattern();
  const re2::StringPiece all(text.data(), text.size());
  re2::StringPiece m;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t len;
    if (re.Match(all, pos, text.size(), re2::RE2::ANCHOR_START, &m, 1) && !m.empty()) {
      len = m.size();
      size_t last = len - 1;  // start of the match's last character
      while (last > 0 && (static_cast<unsigned char>(text[pos + last]) & 0xC0) == 0x80) --last;
      // Only the whitespace alternative ends in whitespace (the others end in a letter,
      // a digit or another non-space): a run followed by text gives its last one back.
      const auto* p = reinterpret_cast<const unsigned char*>(text.data() + pos);
      if (last > 0 && pos + len < text.size() && is_space(decode_at(p + last, len - last))) len = last;
    } else {
      len = utf8_length(static_cast<unsigned char>(text[pos]));  // unreachable: every character matches
    }
    out.push_back(text.substr(pos, len));
    pos += len;
  }
}

}  // namespace

const std::array<std::string, 256>& byte_level_alphabet() {
  static const std::array<std::string, 256> alphabet = [] {
    std::array<int, 256> code{};
    code.fill(-1);
    for (int b = '!'; b <= '~'; ++b) code[b] = b;
    for (int b = 0xA1; b <= 0xAC; ++b) code[b] = b;
    for (int b = 0xAE; b <= 0xFF; ++b) code[b] = b;
    int next = 256;
    for (int b = 0; b < 256; ++b)
      if (code[b] < 0) code[b] = next++;
    std::array<std::string, 256> out;
    for (int b = 0; b < 256; ++b) {
      const int c = code[b];  // below 0x800: one or two UTF-8 bytes
      out[b] = c < 0x80 ? std::string(1, static_cast<char>(c))
                        : std::string{static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
    }
    return out;
  }();
  return alphabet;
}

void byte_level_pretokenize(std::string_view text, std::vector<std::string_view>& out) {
  while (!text.empty()) {
    const auto bad = utf8_invalid_offset(text);
    const size_t valid = bad ? *bad : text.size();
    split_valid(text.substr(0, valid), out);
    if (!bad) return;
    out.push_back(text.substr(valid, 1));
    text.remove_prefix(valid + 1);
  }
}

}  // namespace localist
