// SPDX-License-Identifier: Apache-2.0
// plan_check.h: holds `localist plan --json` to what a real run held and sent: every
// memory record of the run's metrics.jsonl (per rank and LLM: parameters, gradients,
// optimizer state, communication buffers, as ModelGroup::memory counts them) against the
// plan's rank, with its place in the mesh and the blocks it owns; the plan's peak against
// the allocator's; and a step's counted collective payloads against the plan's.
#pragma once
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <sstream>
#include <string>

#include "tests/test_util.h"

namespace localist::test {

// Calls check(record, plan's rank) for every memory record of `metrics_path` (a record
// the plan has no rank for fails); returns how many were checked.
template <typename Check>
int for_each_memory_record(const std::string& plan_json, const std::string& metrics_path, Check check) {
  const auto plan = nlohmann::json::parse(plan_json, nullptr, false);
  EXPECT_FALSE(plan.is_discarded()) << plan_json;
  if (plan.is_discarded()) return 0;
  std::istringstream lines(read_text(metrics_path));
  int compared = 0;
  for (std::string line; std::getline(lines, line);) {
    const auto r = nlohmann::json::parse(line, nullptr, false);
    if (r.is_discarded() || r.value("event", "") != "memory") continue;
    const nlohmann::json* rank = nullptr;
    for (const auto& l : plan.at("llms")) {
      if (l.at("name") != r.at("llm")) continue;
      for (const auto& p : l.at("per_rank")) {
        if (p.at("rank") == r.at("rank")) rank = &p;
      }
    }
    EXPECT_TRUE(rank) << "the plan has no rank " << r.at("rank") << " for LLM " << r.at("llm") << ": " << plan_json;
    if (!rank) continue;
    check(r, *rank);
    ++compared;
  }
  return compared;
}

// Compares every memory record of `metrics_path` with `plan_json` (within `tolerance`,
// relative); returns how many (rank, LLM) pairs were compared.
inline int expect_plan_matches_run(const std::string& plan_json, const std::string& metrics_path,
                                   double tolerance = 0.05) {
  return for_each_memory_record(plan_json, metrics_path, [&](const nlohmann::json& r, const nlohmann::json& rank) {
    for (const char* k : {"parameter_bytes", "gradient_bytes", "optimizer_bytes", "sync_buffer_bytes"}) {
      const double got = rank.at(k).get<double>(), want = r.at(k).get<double>();
      EXPECT_NEAR(got, want, tolerance * std::max(1.0, want))
          << k << " of LLM " << r.at("llm") << " on rank " << r.at("rank") << " (" << metrics_path << ")";
    }
    // Where the rank sits and which blocks it holds: the plan's placement, exactly.
    for (const char* k : {"dp_rank", "bp_rank", "blocks"}) {
      EXPECT_EQ(rank.at(k), r.at(k)) << k << " of LLM " << r.at("llm") << " on rank " << r.at("rank");
    }
  });
}

// The plan's whole-rank peak (total_bytes: held bytes and one micro-batch's activations)
// against each memory record's allocator peak (LOCALIST_COUNT_TENSOR_MEMORY=1, which
// every record must carry), within `tolerance` (relative); returns how many were compared.
inline int expect_plan_peak_matches(const std::string& plan_json, const std::string& metrics_path,
                                    double tolerance = 0.05) {
  return for_each_memory_record(plan_json, metrics_path, [&](const nlohmann::json& r, const nlohmann::json& rank) {
    ASSERT_TRUE(r.contains("peak_tensor_bytes")) << "run without LOCALIST_COUNT_TENSOR_MEMORY=1: " << metrics_path;
    const double want = r.at("peak_tensor_bytes").get<double>(), got = rank.at("total_bytes").get<double>();
    EXPECT_NEAR(got / want, 1.0, tolerance) << "plan " << got << " bytes, measured peak " << want << " on rank "
                                            << r.at("rank") << " (" << metrics_path << ")";
  });
}

// Compares what LLM `llm`'s lead handed to collectives in step `step` (the step record's
// comm_bytes, LOCALIST_COUNT_COMM_BYTES=1, logged every step) with the plan's payloads:
// its data-parallel groups (dp[...]), its replica's (bp[...]) and its whole group.
inline void expect_plan_payloads_match(const std::string& plan_json, const std::string& metrics_path,
                                       const std::string& llm, int64_t step) {
  const auto plan = nlohmann::json::parse(plan_json, nullptr, false);
  ASSERT_FALSE(plan.is_discarded()) << plan_json;
  nlohmann::json want;
  for (const auto& l : plan.at("llms")) {
    if (l.at("name") == llm) want = l.at("per_rank").at(0).at("payload_bytes_per_step");
  }
  ASSERT_TRUE(want.is_object()) << "no LLM " << llm << " in the plan";
  std::istringstream lines(read_text(metrics_path));
  for (std::string line; std::getline(lines, line);) {
    const auto r = nlohmann::json::parse(line, nullptr, false);
    if (r.is_discarded() || r.value("event", "") != "step" || r.value("llm", "") != llm || r.at("step") != step)
      continue;
    ASSERT_TRUE(r.contains("comm_bytes")) << line;
    // The LLM's group is pool[c] in a pool, else the world itself (whose control plane —
    // step-boundary flags, checkpoint commits — then adds its few bytes).
    const auto& counted = r.at("comm_bytes");
    bool pooled = false;
    for (const auto& [name, bytes] : counted.items()) pooled = pooled || name.rfind("pool[", 0) == 0;
    double dp = 0, group = 0, bp = 0;
    for (const auto& [name, bytes] : counted.items()) {
      if (name.rfind("dp[", 0) == 0) dp += bytes.get<double>();
      if (name.rfind("bp[", 0) == 0) bp += bytes.get<double>();
      if (name.rfind(pooled ? "pool[" : "world", 0) == 0) group += bytes.get<double>();
    }
    EXPECT_NEAR(dp, want.at("dp").get<double>(), 0.05 * want.at("dp").get<double>() + 256) << line;
    EXPECT_NEAR(group, want.at("group").get<double>(), 0.05 * want.at("group").get<double>() + 256) << line;
    EXPECT_NEAR(bp, want.at("bp").get<double>(), 0.05 * want.at("bp").get<double>() + 256) << line;
    return;
  }
  ADD_FAILURE() << "no step record of " << llm << " at step " << step << " in " << metrics_path;
}

}  // namespace localist::test
