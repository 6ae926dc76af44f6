// SPDX-License-Identifier: Apache-2.0
// test_metrics_writer.cpp: core/metrics_writer.h's cut on resume against a hand-written
// attempt that was killed after the checkpoint of step 6: what it logged before the
// checkpoint stays, byte for byte; what came after (and a line the kill cut) goes.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/metrics_writer.h"
#include "tests/test_util.h"

namespace {

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST(MetricsCut, KeepsWhatPrecedesTheCheckpointAndDropsTheRest) {
  localist::test::TempDir dir;
  const std::string path = dir.path() + "/metrics.jsonl";
  // Iteration s of the loop: recruitment round at s, step s, evaluation at s + 1, then
  // the checkpoint of s + 1. The checkpoint of 6 follows step 5 and the evaluation at 6.
  const std::vector<std::string> before = {
      R"({"event":"step","step":0,"loss":5.0})", R"({"event":"resume","step":3,"checkpoint":"c3"})",
      R"({"event":"step","step":3,"loss":4.0})", R"({"event":"recruitment","step":4,"decision":"rejected"})",
      R"({"event":"step","step":5,"loss":3.5})", R"({"event":"eval","step":6,"ce_nats":3.4})",
      R"({"event":"memory","rank":0})"};
  const std::vector<std::string> after = {
      R"({"event":"recruitment","step":6,"decision":"accepted"})", R"({"event":"step","step":6,"loss":3.3})",
      R"({"event":"pool_recruitment","step":7,"accepted":false})", R"({"event":"eval","step":8,"ce_nats":3.2})",
      R"({"event":"step","step":8,"lo)"};  // cut by the kill
  std::string text;
  for (const auto& l : before) text += l + "\n";
  for (const auto& l : after) text += l + (&l == &after.back() ? "" : "\n");
  localist::test::write_text(path, text);

  const localist::MetricsCut cut = localist::metrics_cut_to_checkpoint(path, 6);
  EXPECT_EQ(cut.kept, static_cast<int64_t>(before.size()));
  EXPECT_EQ(cut.dropped, static_cast<int64_t>(after.size()));
  EXPECT_EQ(lines_of(path), before);
  // The resumed attempt appends whole records after them (no line glued to a cut one).
  {
    localist::MetricsWriter w(path);
    w.write({{"event", "step"}, {"step", 6}, {"loss", 3.3}});
  }
  const auto now = lines_of(path);
  ASSERT_EQ(now.size(), before.size() + 1);
  EXPECT_EQ(nlohmann::json::parse(now.back()).at("step"), 6);
  // A missing file stays missing; a cut at step 0 keeps only records of no step.
  EXPECT_EQ(localist::metrics_cut_to_checkpoint(dir.path() + "/none.jsonl", 3).kept, 0);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/none.jsonl"));
  localist::metrics_cut_to_checkpoint(path, 0);
  EXPECT_EQ(lines_of(path), std::vector<std::string>{R"({"event":"memory","rank":0})"});
}

TEST(MetricsCut, WhichRecordsPrecedeTheCheckpoint) {
  using localist::metrics_record_precedes_checkpoint;
  const auto rec = [](const char* event, int64_t step) { return nlohmann::json{{"event", event}, {"step", step}}; };
  EXPECT_TRUE(metrics_record_precedes_checkpoint(rec("step", 9), 10));
  EXPECT_FALSE(metrics_record_precedes_checkpoint(rec("step", 10), 10));
  EXPECT_TRUE(metrics_record_precedes_checkpoint(rec("eval", 10), 10));  // evaluated, then checkpointed
  EXPECT_FALSE(metrics_record_precedes_checkpoint(rec("eval", 11), 10));
  EXPECT_FALSE(metrics_record_precedes_checkpoint(rec("recruitment", 10), 10));  // the round runs after resume
  EXPECT_TRUE(metrics_record_precedes_checkpoint(nlohmann::json{{"event", "memory"}}, 10));
  EXPECT_TRUE(metrics_record_precedes_checkpoint(nlohmann::json{{"event", "x"}, {"step", "a"}}, 10));
}
