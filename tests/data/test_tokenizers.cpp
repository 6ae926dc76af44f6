// SPDX-License-Identifier: Apache-2.0
// test_tokenizers.cpp: byte tokenizer round trip on the bundled corpora (bit for bit),
// SentencePiece training determinism and round trip on text it was not trained on.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/data_config.h"
#include "data/sentencepiece_tokenizer.h"
#include "tests/test_util.h"

using namespace localist;

TEST(ByteTokenizer, RoundTripsCorporaExactly) {
  ByteTokenizer tok;
  for (const char* f : {"wikitext2-valid.txt", "tinyshakespeare.txt"}) {
    const std::string text = test::read_text(test::corpus(f));
    std::vector<uint32_t> ids;
    tok.encode(text, ids);
    ASSERT_EQ(ids.size(), text.size());
    EXPECT_EQ(tok.decode(ids), text) << f;
  }
}

TEST(ByteTokenizer, SpecialTokensAreDroppedByDecode) {
  ByteTokenizer tok;
  std::vector<uint32_t> ids{ByteTokenizer::kDocument, 'h', 'i', ByteTokenizer::kPad, 0xFF};
  EXPECT_EQ(tok.decode(ids), std::string("hi\xFF"));
  EXPECT_EQ(tok.vocab_size(), 258u);
  EXPECT_EQ(tok.hash().size(), 64u);
}

class SentencePieceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    // A 150 kB slice of Shakespeare keeps training under a second.
    train_file_ = *dir_ / "train.txt";
    test::write_text(train_file_, test::read_text(test::corpus("tinyshakespeare.txt")).substr(0, 150000));
    SentencePieceTokenizer::train({train_file_}, 400, "unigram", *dir_ / "a.model");
  }
  static void TearDownTestSuite() { delete dir_; }
  static test::TempDir* dir_;
  static std::string train_file_;
};
test::TempDir* SentencePieceTest::dir_ = nullptr;
std::string SentencePieceTest::train_file_;

TEST_F(SentencePieceTest, TrainingIsDeterministic) {
  // Same data, another path: the model files differ (they record the paths) but the
  // mapping, and so the hash stored in shards, is the same.
  test::TempDir other;
  test::write_text(other / "copy.txt", test::read_text(train_file_));
  SentencePieceTokenizer::train({other / "copy.txt"}, 400, "unigram", other / "b.model");
  auto a = SentencePieceTokenizer::load(*dir_ / "a.model"), b = SentencePieceTokenizer::load(other / "b.model");
  EXPECT_EQ(a->hash(), b->hash());
  std::vector<uint32_t> ia, ib;
  const std::string text = test::read_text(test::corpus("tinyshakespeare.txt")).substr(200000, 30000);
  a->encode(text, ia);
  b->encode(text, ib);
  EXPECT_EQ(ia, ib);
  // A different vocabulary size is a different mapping.
  SentencePieceTokenizer::train({train_file_}, 450, "unigram", other / "c.model");
  EXPECT_NE(SentencePieceTokenizer::load(other / "c.model")->hash(), a->hash());
}

TEST_F(SentencePieceTest, RoundTripsUnseenTextExactly) {
  auto tok = SentencePieceTokenizer::load(*dir_ / "a.model");
  EXPECT_EQ(tok->vocab_size(), 400u);
  EXPECT_EQ(tok->document_id(), 1u);
  EXPECT_EQ(tok->pad_id(), 2u);
  // WikiText (another domain), leading spaces, tabs, CRLF and non-Latin text via byte fallback.
  const std::string wiki = test::read_text(test::corpus("wikitext2-test.txt")).substr(0, 20000);
  for (const std::string& text : {wiki, std::string("  two leading spaces\tand a tab\r\n"),
                                  std::string("\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 end\n")}) {
    std::vector<uint32_t> ids;
    tok->encode(text, ids);
    EXPECT_EQ(tok->decode(ids), text);
  }
  std::vector<uint32_t> ids;
  tok->encode(wiki, ids);
  EXPECT_LT(ids.size(), wiki.size());  // subwords: fewer tokens than bytes
}

TEST_F(SentencePieceTest, BadModelFileIsAnError) {
  test::write_text(*dir_ / "junk.model", "not a model");
  EXPECT_THROW(SentencePieceTokenizer::load(*dir_ / "junk.model"), Error);
  EXPECT_THROW(SentencePieceTokenizer::load(*dir_ / "missing.model"), Error);
}
