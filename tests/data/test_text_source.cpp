// SPDX-License-Identifier: Apache-2.0
// test_text_source.cpp: UTF-8 validation (RFC 3629 cases and randomly generated
// valid text), document splitting that never drops a byte, and the one-line errors
// for missing, empty and non-UTF-8 files.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "data/text_source.h"
#include "tests/test_util.h"

using namespace localist;

namespace {

std::string encode_utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80)
    s += char(cp);
  else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xF0 | (cp >> 18));
    s += char(0x80 | ((cp >> 12) & 0x3F));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

}  // namespace

TEST(Utf8, KnownValidAndInvalidSequences) {
  EXPECT_EQ(utf8_first_invalid("plain ascii"), -1);
  EXPECT_EQ(utf8_first_invalid("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), -1);
  EXPECT_EQ(utf8_first_invalid("ab\xFF"), 2);            // never valid
  EXPECT_EQ(utf8_first_invalid("a\xC0\xAF"), 1);         // overlong '/'
  EXPECT_EQ(utf8_first_invalid("a\xE0\x80\xAF"), 1);     // overlong 3-byte
  EXPECT_EQ(utf8_first_invalid("\xED\xA0\x80"), 0);      // surrogate U+D800
  EXPECT_EQ(utf8_first_invalid("\xF4\x90\x80\x80"), 0);  // above U+10FFFF
  EXPECT_EQ(utf8_first_invalid("ok\xE2\x82"), 2);        // truncated
  EXPECT_EQ(utf8_first_invalid("x\x80"), 1);             // lone continuation
  EXPECT_EQ(utf8_first_invalid("latin1 caf\xE9!"), 10);  // Latin-1 e-acute
}

TEST(Utf8, RandomValidTextIsAcceptedAndCutsAreFound) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> cp(1, 0x10FFFF);
  for (int trial = 0; trial < 200; ++trial) {
    std::string s;
    std::vector<size_t> starts;
    for (int i = 0; i < 50; ++i) {
      uint32_t c = cp(rng);
      if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
      starts.push_back(s.size());
      s += encode_utf8(c);
    }
    ASSERT_EQ(utf8_first_invalid(s), -1);
    // Dropping the first byte of a multi-byte character leaves a stray continuation byte.
    for (size_t i = 0; i < starts.size(); ++i) {
      const size_t b = starts[i], e = i + 1 < starts.size() ? starts[i + 1] : s.size();
      if (e - b < 2) continue;
      std::string cut = s.substr(0, b) + s.substr(b + 1);
      EXPECT_EQ(utf8_first_invalid(cut), static_cast<int64_t>(b));
      break;
    }
  }
}

TEST(SplitDocuments, ModesKeepEveryByte) {
  const std::string text = " \n = A = \n \n text a \n = = sub = = \n more\n \n = B = \n b text\n";
  EXPECT_EQ(split_documents(text, "file"), (std::vector<size_t>{0}));
  const auto wiki = split_documents(text, "wikitext");
  ASSERT_EQ(wiki.size(), 2u);
  EXPECT_EQ(wiki[0], 0u);
  EXPECT_EQ(text.substr(wiki[1], 8), " = B = \n");
  const std::string play = "A:\nhi\n\nB:\nho\n\n\nC:\nhey";
  const auto blank = split_documents(play, "blank_line");
  EXPECT_EQ(blank, (std::vector<size_t>{0, 7, 15}));
  EXPECT_THROW(split_documents(text, "paragraph"), ConfigError);
}

TEST(SplitDocuments, WikitextValidHasItsArticles) {
  const std::string text = test::read_text(test::corpus("wikitext2-valid.txt"));
  const auto starts = split_documents(text, "wikitext");
  EXPECT_EQ(starts.size(), 60u);  // WikiText-2 valid holds 60 articles
  for (size_t i = 1; i < starts.size(); ++i) {
    EXPECT_EQ(text.substr(starts[i], 3), " = ");
    EXPECT_NE(text[starts[i] + 3], '=');
  }
}

TEST(TextSource, ErrorsAreOneLineAndSayWhere) {
  test::TempDir dir;
  auto message = [](const std::string& path) {
    try {
      text_source_read(path, "file");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string missing = message(dir / "nope.txt");
  EXPECT_NE(missing.find("nope.txt: source file not found"), std::string::npos) << missing;
  EXPECT_EQ(missing.find("pool_corpora"), std::string::npos) << missing;
  const std::string generated = message(dir / "corpora/generated/german-train.txt");
  EXPECT_NE(generated.find("corpora/generated/ is made by tools/pool_corpora.sh"), std::string::npos) << generated;
  test::write_text(dir / "empty.txt", "");
  EXPECT_NE(message(dir / "empty.txt").find("empty.txt: source file is empty"), std::string::npos);
  test::write_text(dir / "latin1.txt", "line one\nline two caf\xE9\n");
  const std::string bad = message(dir / "latin1.txt");
  EXPECT_NE(bad.find("latin1.txt:2: invalid UTF-8 (byte 0xE9 at offset 21)"), std::string::npos) << bad;
  for (const auto& m : {missing, bad}) EXPECT_EQ(m.find('\n'), std::string::npos);
}
