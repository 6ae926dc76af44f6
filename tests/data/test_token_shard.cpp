// SPDX-License-Identifier: Apache-2.0
// test_token_shard.cpp: shard write/read round trip (uint16 and uint32 storage),
// attributes, and clear errors for truncated, foreign and out-of-range access.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "data/token_shard.h"
#include "tests/test_util.h"

using namespace localist;

namespace {

ShardMeta meta_for(int64_t vocab) {
  ShardMeta m;
  m.source_name = "s";
  m.source_path = "/x/s.txt";
  m.source_sha256 = std::string(64, 'a');
  m.source_bytes = 10;
  m.domain = "dom";
  m.tokenizer_kind = "test";
  m.tokenizer_spec = "{}";
  m.tokenizer_hash = std::string(64, 'b');
  m.vocab_size = vocab;
  return m;
}

}  // namespace

TEST(TokenShard, RoundTripNarrowAndWide) {
  test::TempDir dir;
  for (int64_t vocab : {258, 70000}) {
    std::vector<uint32_t> tokens;
    for (uint32_t i = 0; i < 5000; ++i) tokens.push_back((i * 7919u) % static_cast<uint32_t>(vocab));
    const std::vector<uint64_t> docs{0, 1200, 5000};
    const std::string path = dir / ("s" + std::to_string(vocab) + ".h5");
    shard_write(path, tokens, docs, meta_for(vocab));
    ShardReader r(path);
    EXPECT_EQ(r.read_all(), tokens);
    EXPECT_EQ(r.document_offsets(), docs);
    EXPECT_EQ(r.meta().token_count, 5000);
    EXPECT_EQ(r.meta().document_count, 2);
    EXPECT_EQ(r.meta().domain, "dom");
    EXPECT_EQ(r.meta().vocab_size, vocab);
    std::vector<uint32_t> window(10);
    r.read(4990, 10, window.data());
    EXPECT_TRUE(std::equal(window.begin(), window.end(), tokens.begin() + 4990));
    EXPECT_THROW(r.read(4995, 10, window.data()), Error);
    // No temporary file is left behind.
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos);
    }
  }
  // Storage type follows the vocabulary (h5dump, installed by tools/setup.sh, as the
  // independent reader).
  for (const auto& [file, type] :
       {std::pair<std::string, std::string>{"s258.h5", "H5T_STD_U16LE"}, {"s70000.h5", "H5T_STD_U32LE"}}) {
    auto r = test::run_command("h5dump -H -d /tokens '" + (dir / file) + "' 2>&1");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find(type), std::string::npos) << r.out;
  }
}

TEST(TokenShard, BrokenFilesGiveClearErrors) {
  test::TempDir dir;
  shard_write(dir / "good.h5", std::vector<uint32_t>(100, 3), {0, 100}, meta_for(258));
  const std::string bytes = test::read_text(dir / "good.h5");
  test::write_text(dir / "trunc.h5", bytes.substr(0, bytes.size() / 2));
  test::write_text(dir / "text.h5", "hello");
  for (const char* name : {"trunc.h5", "text.h5", "absent.h5"}) {
    try {
      ShardReader r(dir / name);
      ADD_FAILURE() << name << " opened";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

// Content a valid HDF5 file can hold but a shard must not (found by the shard fuzz
// target's seeds): ids past the vocabulary, offsets that run backwards or past the end.
TEST(TokenShard, DamagedContentIsRefusedByTheReader) {
  test::TempDir dir;
  auto message = [&](const std::vector<uint32_t>& tokens, const std::vector<uint64_t>& docs, bool offsets) {
    const std::string path = dir / "s.h5";
    shard_write(path, tokens, docs, meta_for(258));
    try {
      ShardReader r(path);
      if (offsets)
        r.document_offsets();
      else
        r.read_all();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message({256, 300, 1}, {0, 3}, false).find("token 1 has id 300, outside the vocabulary of 258"),
            std::string::npos);
  EXPECT_NE(message({256, 1, 2, 3}, {0, 3, 2, 4}, true).find("non-decreasing offsets from 0 to 4"), std::string::npos);
  EXPECT_NE(message({256, 1}, {0, 9}, true).find("re-run `localist prepare --force`"), std::string::npos);
  EXPECT_EQ(message({256, 1, 256, 2}, {0, 2, 4}, true), "");
}
