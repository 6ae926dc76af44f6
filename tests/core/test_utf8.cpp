// SPDX-License-Identifier: Apache-2.0
// test_utf8.cpp: utf8_invalid_offset (core/utf8.h) against the cases of RFC 3629 §3/§10:
// every well-formed length, and overlong forms, surrogates, code points past U+10FFFF,
// stray continuation bytes and cut sequences each found at the offset of their lead byte.
#include <gtest/gtest.h>

#include <string>

#include "core/utf8.h"

using localist::utf8_invalid_offset;

TEST(Utf8, WellFormedTextHasNoInvalidByte) {
  EXPECT_FALSE(utf8_invalid_offset(""));
  EXPECT_FALSE(utf8_invalid_offset("plain ASCII\n"));
  EXPECT_FALSE(utf8_invalid_offset("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"));  // é € 😀 U+10FFFF
  EXPECT_FALSE(utf8_invalid_offset("\xed\x9f\xbf \xee\x80\x80"));                                   // U+D7FF, U+E000
}

TEST(Utf8, MalformedSequencesAreFoundAtTheirLeadByte) {
  EXPECT_EQ(utf8_invalid_offset("caf\xe9 au lait"), 3u);           // Latin-1 é
  EXPECT_EQ(utf8_invalid_offset("ab\x80"), 2u);                    // stray continuation byte
  EXPECT_EQ(utf8_invalid_offset("x\xc0\xaf"), 1u);                 // overlong '/'
  EXPECT_EQ(utf8_invalid_offset("x\xe0\x80\xaf"), 1u);             // overlong, 3 bytes
  EXPECT_EQ(utf8_invalid_offset("x\xf0\x80\x80\xaf"), 1u);         // overlong, 4 bytes
  EXPECT_EQ(utf8_invalid_offset("x\xed\xa0\x80"), 1u);             // surrogate U+D800
  EXPECT_EQ(utf8_invalid_offset("x\xf4\x90\x80\x80"), 1u);         // U+110000
  EXPECT_EQ(utf8_invalid_offset("x\xf5\x80\x80\x80"), 1u);         // lead byte past F4
  EXPECT_EQ(utf8_invalid_offset("ok\xe2\x82"), 2u);                // cut at the end
  EXPECT_EQ(utf8_invalid_offset("ok\xe2\x82z"), 2u);               // cut before ASCII
  EXPECT_EQ(utf8_invalid_offset(std::string("a\0b\xff", 4)), 3u);  // NUL is valid, 0xFF never
}
