// SPDX-License-Identifier: Apache-2.0
// test_prepare.cpp: `prepare` on the bundled corpora: token counts equal bytes plus
// one boundary token per document, decoding a shard gives back the file, reruns are
// stable (same counts and checksums, up-to-date shards kept), and a bad source among
// good ones stops everything before any shard is written.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/prepare.h"
#include "data/text_source.h"
#include "data/tokenizer.h"
#include "tests/test_util.h"

using namespace localist;

namespace {

DataConfig bundled(const std::string& shard_dir) {
  DataConfig d;
  d.shard_dir = shard_dir;
  d.sources.push_back({"wiki", test::corpus("wikitext2-valid.txt"), "encyclopedia", "wikitext", 1.0, 0, true});
  d.sources.push_back({"drama", test::corpus("tinyshakespeare.txt"), "drama", "blank_line", 0.5, 100, true});
  return d;
}

}  // namespace

TEST(Prepare, ByteShardsMatchSourcesAndAreStable) {
  test::TempDir dir;
  const DataConfig data = bundled(dir / "shards");
  const auto first = prepare_shards(data, false, nullptr);
  ASSERT_EQ(first.size(), 2u);
  ByteTokenizer tok;
  for (size_t i = 0; i < first.size(); ++i) {
    const auto& src = data.sources[i];
    const std::string text = test::read_text(src.path);
    const size_t docs = split_documents(text, src.split).size();
    const ShardMeta& m = first[i].meta;
    EXPECT_TRUE(first[i].written);
    EXPECT_EQ(m.source_bytes, static_cast<int64_t>(std::filesystem::file_size(src.path)));
    EXPECT_EQ(m.token_count, m.source_bytes + static_cast<int64_t>(docs));
    EXPECT_EQ(m.document_count, static_cast<int64_t>(docs));
    EXPECT_EQ(m.domain, src.domain);
    ShardReader r(first[i].path);
    const auto tokens = r.read_all();
    EXPECT_EQ(tok.decode(tokens), text) << "round trip of " << src.name;
    const auto offsets = r.document_offsets();
    for (size_t d = 0; d + 1 < offsets.size(); ++d) EXPECT_EQ(tokens[offsets[d]], ByteTokenizer::kDocument);
  }
  const std::string before = test::read_text(first[0].path);
  const auto second = prepare_shards(data, false, nullptr);
  const auto forced = prepare_shards(data, true, nullptr);
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_FALSE(second[i].written);
    EXPECT_TRUE(forced[i].written);
    for (const auto* run : {&second[i].meta, &forced[i].meta}) {
      EXPECT_EQ(run->token_count, first[i].meta.token_count);
      EXPECT_EQ(run->source_sha256, first[i].meta.source_sha256);
      EXPECT_EQ(run->tokenizer_hash, first[i].meta.tokenizer_hash);
    }
  }
  // The forced rebuild writes the same tokens.
  EXPECT_EQ(ShardReader(forced[0].path).read_all(), ShardReader(first[0].path).read_all());
  // One JSON line per written shard.
  const std::string events = test::read_text(dir / "shards/prepare.jsonl");
  EXPECT_EQ(std::count(events.begin(), events.end(), '\n'), 4);
}

TEST(Prepare, BadSourceWritesNothing) {
  test::TempDir dir;
  DataConfig data = bundled(dir / "shards");
  test::write_text(dir / "bad.txt", "fine\nnot \xFF fine\n");
  data.sources.push_back({"bad", dir / "bad.txt", "bad", "file", 1.0, 0, true});
  try {
    prepare_shards(data, false, nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:2: invalid UTF-8"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "shards"));
}

TEST(Prepare, SentencePieceShardsRoundTrip) {
  test::TempDir dir;
  test::write_text(dir / "a.txt", test::read_text(test::corpus("tinyshakespeare.txt")).substr(0, 120000));
  DataConfig data;
  data.shard_dir = dir / "sp";
  data.tokenizer.kind = "sentencepiece";
  data.tokenizer.vocab_size = 500;
  data.sources.push_back({"a", dir / "a.txt", "drama", "blank_line", 1.0, 0, true});
  const auto shards = prepare_shards(data, false, nullptr);
  ASSERT_EQ(shards.size(), 1u);
  EXPECT_EQ(shards[0].meta.tokenizer_kind, "sentencepiece");
  EXPECT_EQ(shards[0].meta.vocab_size, 500);
  EXPECT_TRUE(std::filesystem::exists(trained_tokenizer_path(data)));
  auto tok = tokenizer_create(data.tokenizer, {}, trained_tokenizer_path(data));
  EXPECT_EQ(tok->decode(ShardReader(shards[0].path).read_all()), test::read_text(dir / "a.txt"));
  const auto again = prepare_shards(data, false, nullptr);
  EXPECT_FALSE(again[0].written);
  EXPECT_EQ(again[0].meta.token_count, shards[0].meta.token_count);
}
