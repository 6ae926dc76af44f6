// SPDX-License-Identifier: Apache-2.0
// test_sampler.cpp: the global sample order is the same for 1, 2 and 4 data-parallel
// ranks, a source never appears before its start step, weights set the mixture, and
// the windows read from shards are real stretches of the source text.
#include <gtest/gtest.h>
#include <algorithm>

#include <map>

#include "core/check.h"
#include "core/error.h"
#include "data/batch_reader.h"
#include "data/byte_tokenizer.h"
#include "data/prepare.h"
#include "data/sampler.h"
#include "tests/test_util.h"

using namespace localist;

namespace {

GlobalSampler make_sampler(int64_t batch = 16) {
  return GlobalSampler({{"a", 100000, 1.0, 0}, {"b", 5000, 3.0, 0}, {"late", 20000, 1.0, 50}}, 64, 1234, batch);
}

}  // namespace

TEST(Sampler, SameGlobalSequenceForAnyDataParallelSize) {
  const GlobalSampler s = make_sampler();
  for (int64_t step = 0; step < 100; ++step) {
    std::vector<SampleRef> reference;
    for (int64_t i = 0; i < 16; ++i) reference.push_back(s.sample(step, i));
    for (int dp : {1, 2, 3, 4, 5, 7, 16}) {
      std::vector<SampleRef> joined;
      size_t smallest = 16, largest = 0;
      for (int r = 0; r < dp; ++r) {
        auto part = s.rank_samples(step, r, dp);
        smallest = std::min(smallest, part.size()), largest = std::max(largest, part.size());
        joined.insert(joined.end(), part.begin(), part.end());
      }
      ASSERT_EQ(joined, reference) << "step " << step << " dp " << dp;
      EXPECT_LE(largest - smallest, 1u) << "dp " << dp;  // uneven slices differ by at most one row
      EXPECT_GE(smallest, 1u);
    }
  }
  EXPECT_EQ(s.rank_range(0, 3), (std::pair<int64_t, int64_t>{0, 6}));  // 16 over 3: 6, 5, 5
  EXPECT_EQ(s.rank_range(2, 3), (std::pair<int64_t, int64_t>{11, 16}));
  EXPECT_THROW(s.rank_range(0, 17), ConfigError);  // a rank without a row
}

TEST(Sampler, StartStepAndWeights) {
  const GlobalSampler s = make_sampler(64);
  std::map<int32_t, int> counts_before, counts_after;
  for (int64_t step = 0; step < 200; ++step) {
    for (int64_t i = 0; i < 64; ++i) {
      const SampleRef r = s.sample(step, i);
      ASSERT_GE(r.source, 0);
      ASSERT_LE(r.start + 65, s.sources()[r.source].token_count);
      if (step < 50) {
        ASSERT_NE(r.source, 2) << "source 'late' sampled at step " << step;
        counts_before[r.source]++;
      } else {
        counts_after[r.source]++;
      }
    }
  }
  // Before step 50: weights 1:3 -> 25% / 75% (3200 draws; 4 sigma ~ 3%).
  EXPECT_NEAR(counts_before[0] / 3200.0, 0.25, 0.03);
  // From step 50: 1:3:1 -> 20% / 60% / 20% (9600 draws).
  EXPECT_NEAR(counts_after[2] / 9600.0, 0.20, 0.02);
  EXPECT_NEAR(counts_after[1] / 9600.0, 0.60, 0.02);
}

TEST(Sampler, SeedChangesTheOrderAndShortSourcesAreRejected) {
  const GlobalSampler a = make_sampler(), b({{"a", 100000, 1.0, 0}, {"b", 5000, 3.0, 0}}, 64, 99, 16);
  int same = 0;
  for (int64_t i = 0; i < 16; ++i) same += a.sample(0, i) == b.sample(0, i);
  EXPECT_LT(same, 3);
  EXPECT_THROW(GlobalSampler({{"tiny", 10, 1.0, 0}}, 64, 1, 4), ConfigError);
  EXPECT_THROW(GlobalSampler({{"a", 1000, 1.0, 5}}, 64, 1, 4), ConfigError);
}

// A draw restricted to some sources: only those, in proportion to their weights (a
// naive count), from the same positions a source's windows take; none started: an error.
TEST(Sampler, SampleAmongKeepsToTheAllowedSources) {
  const GlobalSampler s = make_sampler(64);
  std::vector<int64_t> count(3, 0);
  for (int64_t i = 0; i < 4000; ++i) {
    const SampleRef r = s.sample_among(100, i, {1, 2});
    ASSERT_TRUE(r.source == 1 || r.source == 2) << i;
    ASSERT_LE(r.start + 65, r.source == 1 ? 5000u : 20000u);
    ++count[r.source];
  }
  EXPECT_NEAR(static_cast<double>(count[1]) / 4000, 0.75, 0.03);  // weights 3 : 1
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(s.sample_among(7, i, {}), s.sample(7, i));
  EXPECT_THROW(s.sample_among(10, 0, {2}), InternalError);  // "late" starts at step 50: a caller's bug
}

TEST(BatchReader, WindowsAreStretchesOfTheSourceText) {
  test::TempDir dir;
  DataConfig data;
  data.shard_dir = dir / "shards";
  data.sources.push_back({"wiki", test::corpus("wikitext2-valid.txt"), "encyclopedia", "wikitext", 1.0, 0, true});
  data.sources.push_back({"drama", test::corpus("tinyshakespeare.txt"), "drama", "blank_line", 1.0, 3, true});
  data.sources.push_back({"heldout", test::corpus("wikitext2-test.txt"), "encyclopedia", "wikitext", 1.0, 0, false});
  prepare_shards(data, false, nullptr);
  const BatchReader reader(data, 128, 42, 8);
  const BatchReader uncached(data, 128, 42, 8, /*cache_bytes=*/0);
  ASSERT_EQ(reader.shards().size(), 2u);  // the held-out source is never sampled
  EXPECT_TRUE(reader.shards()[0]->cached());
  EXPECT_FALSE(uncached.shards()[0]->cached());
  const std::string texts[2] = {test::read_text(data.sources[0].path), test::read_text(data.sources[1].path)};
  ByteTokenizer tok;
  for (int64_t step = 0; step < 6; ++step) {
    TokenBatch whole = reader.read(step, 0, 1);
    EXPECT_EQ(uncached.read(step, 0, 1).tokens, whole.tokens);  // HDF5 reads == in-memory cache
    ASSERT_EQ(whole.rows, 8);
    ASSERT_EQ(whole.cols, 129);
    for (int64_t r = 0; r < whole.rows; ++r) {
      if (step < 3) {
        EXPECT_EQ(whole.source[r], 0);
      }
      const std::vector<uint32_t> row(whole.tokens.begin() + r * 129, whole.tokens.begin() + (r + 1) * 129);
      // Each document-free piece of the window occurs in its source text.
      std::string piece;
      for (uint32_t t : row) {
        if (t == ByteTokenizer::kDocument) {
          if (!piece.empty()) {
            EXPECT_NE(texts[whole.source[r]].find(piece), std::string::npos);
          }
          piece.clear();
        } else {
          piece += static_cast<char>(t);
        }
      }
      if (!piece.empty()) {
        EXPECT_NE(texts[whole.source[r]].find(piece), std::string::npos);
      }
    }
    // Two ranks read the two halves of the same batch.
    TokenBatch r0 = reader.read(step, 0, 2), r1 = reader.read(step, 1, 2);
    r0.tokens.insert(r0.tokens.end(), r1.tokens.begin(), r1.tokens.end());
    EXPECT_EQ(r0.tokens, whole.tokens);
  }
}
