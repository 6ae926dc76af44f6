// SPDX-License-Identifier: Apache-2.0
// plan_check.h: holds `localist plan --json` to what a real run held: every memory record
// of the run's metrics.jsonl (per rank and LLM: parameters, gradients, optimizer state,
// communication buffers, as ModelGroup::memory counts them) against the plan's rank.
#pragma once
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <sstream>
#include <string>

#include "tests/test_util.h"

namespace localist::test {

// Compares every memory record of `metrics_path` with `plan_json` (within `tolerance`,
// relative); returns how many (rank, LLM) pairs were compared.
inline int expect_plan_matches_run(const std::string& plan_json, const std::string& metrics_path,
                                   double tolerance = 0.05) {
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
    for (const char* k : {"parameter_bytes", "gradient_bytes", "optimizer_bytes", "sync_buffer_bytes"}) {
      const double got = rank->at(k).get<double>(), want = r.at(k).get<double>();
      EXPECT_NEAR(got, want, tolerance * std::max(1.0, want))
          << k << " of LLM " << r.at("llm") << " on rank " << r.at("rank") << " (" << metrics_path << ")";
    }
    ++compared;
  }
  return compared;
}

}  // namespace localist::test
