// SPDX-License-Identifier: Apache-2.0
// test_tensorboard_writer.cpp: core/tensorboard_writer.h's framing against CRC-32C's
// published check values (RFC 3720 B.4) and a bit-by-bit CRC, its mapping of records to
// tags, and the rebuild on open. TensorBoard's own reader checks the files end to end
// (tools/check_tensorboard.py in e2e_cli).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "core/tensorboard_writer.h"
#include "tests/test_util.h"

namespace {

namespace fs = std::filesystem;

// Bit by bit, from the polynomial: the reference for the table-driven crc32c.
uint32_t crc32c_bitwise(const std::string& s) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : s) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
  }
  return ~crc;
}

uint32_t unmask(uint32_t m) {
  const uint32_t r = m - 0xA282EAD8u;
  return (r >> 17) | (r << 15);
}

uint64_t le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

// The payloads of a file of TFRecords, each frame's CRCs checked.
std::vector<std::string> records_of(const std::string& bytes) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < bytes.size()) {
    const uint64_t n = le(bytes, at, 8);
    EXPECT_EQ(unmask(static_cast<uint32_t>(le(bytes, at + 8, 4))), crc32c_bitwise(bytes.substr(at, 8)));
    const std::string payload = bytes.substr(at + 12, n);
    EXPECT_EQ(unmask(static_cast<uint32_t>(le(bytes, at + 12 + n, 4))), crc32c_bitwise(payload));
    out.push_back(payload);
    at += 16 + n;
  }
  EXPECT_EQ(at, bytes.size()) << "a frame runs past the end of the file";
  return out;
}

std::vector<fs::path> event_files(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  return out;
}

}  // namespace

TEST(TensorBoardWriter, Crc32cMatchesThePublishedCheckValues) {
  EXPECT_EQ(localist::crc32c("123456789", 9), 0xE3069283u);
  const std::string zeros(32, '\0'), ones(32, '\xFF');
  EXPECT_EQ(localist::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(localist::crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  const std::string text = "localist: a dial from localist to distributed";
  EXPECT_EQ(localist::crc32c(text.data(), text.size()), crc32c_bitwise(text));
  // Continued over two pieces equals one pass.
  EXPECT_EQ(localist::crc32c(text.data() + 10, text.size() - 10, localist::crc32c(text.data(), 10)),
            crc32c_bitwise(text));
}

TEST(TensorBoardWriter, FramesCarryTheLengthAndBothMaskedCrcs) {
  const std::string payload(300, 'x');
  const std::vector<std::string> r = records_of(localist::tfrecord_frame(payload));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], payload);
}

TEST(TensorBoardWriter, RecordsBecomeScalarsUnderTheirLlmAndDecisionsText) {
  const auto step = nlohmann::json::parse(
      R"({"event":"step","llm":"de","step":7,"loss":2.5,"dial":[0.25,0.75],"wall_time":1000.5,"note":"x"})");
  std::map<std::string, double> got;
  for (const auto& e : localist::tensorboard_events(step, 0)) {
    EXPECT_FALSE(e.is_text);
    EXPECT_EQ(e.step, 7);
    EXPECT_EQ(e.wall_time, 1000.5);
    got[e.tag] = e.value;
  }
  EXPECT_EQ(got, (std::map<std::string, double>{{"de/loss", 2.5}, {"de/dial/0", 0.25}, {"de/dial/1", 0.75}}));

  const auto eval = nlohmann::json::parse(R"({"event":"eval","llm":"main","step":10,"block_share":[0.5,0.5]})");
  std::vector<std::string> tags;
  for (const auto& e : localist::tensorboard_events(eval, 0)) tags.push_back(e.tag);
  EXPECT_EQ(tags, (std::vector<std::string>{"main/eval/block_share/0", "main/eval/block_share/1"}));

  const auto decision = nlohmann::json::parse(R"({"event":"recruitment","llm":"main","step":4,"gain_bits":12.5})");
  const auto d = localist::tensorboard_events(decision, 0);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_TRUE(d[0].is_text);
  EXPECT_EQ(d[0].tag, "main/recruitment");
  EXPECT_NE(d[0].text.find("\"gain_bits\": 12.5"), std::string::npos) << d[0].text;
  EXPECT_EQ(d[1].tag, "main/recruitment/gain_bits");
  EXPECT_EQ(d[1].value, 12.5);

  // No step: at the last logged step, one tag per rank.
  const auto memory = nlohmann::json::parse(R"({"event":"memory","llm":"main","rank":1,"parameter_bytes":64})");
  const auto m = localist::tensorboard_events(memory, 19);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].tag, "main/memory/rank_1");
  EXPECT_EQ(m[0].step, 19);
  EXPECT_EQ(m[1].tag, "main/memory/rank_1/parameter_bytes");
}

TEST(TensorBoardWriter, OpeningRebuildsFromTheMetricsFileAndRemovesOlderEventFiles) {
  localist::test::TempDir dir;
  const std::string metrics = dir.path() + "/metrics.jsonl", tb = dir.path() + "/tb";
  localist::write_file_atomic(metrics, R"({"event":"step","llm":"main","step":0,"loss":3.0})"
                                       "\n"
                                       R"({"event":"step","llm":"main","step":1,"loss":2.0})"
                                       "\n");
  std::string first_path;
  {
    localist::TensorBoardWriter w(tb, metrics);
    first_path = w.path();
    w.write(nlohmann::json::parse(R"({"event":"step","llm":"main","step":2,"loss":1.0})"));
    // Flushed per record: the file holds the version event and three scalars already.
    EXPECT_EQ(records_of(localist::read_file(w.path())).size(), 4u);
  }
  localist::write_file_atomic(tb + "/unrelated.txt", "kept");
  // A resume cut the metrics back to step 1: the new file holds exactly that, the old is gone.
  localist::write_file_atomic(metrics, R"({"event":"step","llm":"main","step":0,"loss":3.0})"
                                       "\n");
  localist::TensorBoardWriter again(tb, metrics);
  EXPECT_NE(again.path(), first_path);
  EXPECT_FALSE(fs::exists(first_path));
  EXPECT_TRUE(fs::exists(tb + "/unrelated.txt"));
  EXPECT_EQ(event_files(tb).size(), 2u);
  EXPECT_EQ(records_of(localist::read_file(again.path())).size(), 2u);
}

TEST(TensorBoardWriter, AnUnwritableDirectoryIsAOneLineError) {
  localist::test::TempDir dir;
  localist::write_file_atomic(dir.path() + "/file", "x");
  try {
    localist::TensorBoardWriter w(dir.path() + "/file/tb", dir.path() + "/metrics.jsonl");
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("/file/tb: cannot create the TensorBoard directory"), std::string::npos)
        << e.what();
  }
}
