// SPDX-License-Identifier: Apache-2.0
// test_pool_spawn.cpp: the LLM-level criterion of M11 step 3 against a hand computation
// (G_LLM with the naming cost R_d, c_LLM, J before and after, the confidence bound at the
// accept/reject boundary) and the trigger's saturation rule of step 1 on recruiter logs.
#include <gtest/gtest.h>

#include <cmath>

#include "pool/pool_spawn.h"
#include "recruitment/mdl.h"

using namespace localist;

TEST(PoolSpawn, CriterionInBitsAgainstAHandComputation) {
  const double n_d = 1e7, docs = n_d / 128;  // windows of 128 tokens are the documents
  const int64_t p = 100000, max_llms = 4;
  const double c = 0.5 * p * std::log2(n_d) + 2.0;  // c_LLM = (p/2)·log2 N_d + log2 max_llms
  const double naming = docs * std::log2(3.0);      // a third LLM: R_d = docs·log2 3
  // b_p − b_s chosen so that G − c = 1000 bits exactly.
  const double diff = (c + naming + 1000) / n_d;
  const MdlDecision yes = mdl_decide_spawn(3.0, 3.0 - diff, n_d, docs, 3, p, max_llms, 0, 777, 0, 0);
  EXPECT_TRUE(yes.accepted) << yes.to_string();
  EXPECT_NEAR(yes.naming_bits, naming, 1e-6);
  EXPECT_NEAR(yes.cost_bits, c, 1e-6);
  EXPECT_NEAR(yes.gain_bits, c + 1000, 1e-3);
  EXPECT_NEAR(yes.j_before, 3.0 * n_d + 777, 1e-3);                       // CL under the parent + earlier costs
  EXPECT_NEAR(yes.j_after, (3.0 - diff) * n_d + naming + 777 + c, 1e-3);  // CL under s + naming + costs
  EXPECT_NEAR(yes.j_before - yes.j_after, 1000, 1e-3);
  // δ above the margin, or a confidence bound wider than it, rejects; J does not move.
  EXPECT_FALSE(mdl_decide_spawn(3.0, 3.0 - diff, n_d, docs, 3, p, max_llms, 1001, 777, 0, 0).accepted);
  const MdlDecision wide = mdl_decide_spawn(3.0, 3.0 - diff, n_d, docs, 3, p, max_llms, 0, 777, 600, 2);
  EXPECT_FALSE(wide.accepted);
  EXPECT_DOUBLE_EQ(wide.j_after, wide.j_before);
  EXPECT_TRUE(mdl_decide_spawn(3.0, 3.0 - diff, n_d, docs, 3, p, max_llms, 0, 777, 400, 2).accepted);
  // A specialist no better than its parent pays the naming and loses.
  const MdlDecision same = mdl_decide_spawn(3.0, 3.0, n_d, docs, 2, p, max_llms, 0, 0, 0, 0);
  EXPECT_FALSE(same.accepted);
  EXPECT_NEAR(same.gain_bits, -docs, 1e-6);
}

TEST(PoolSpawn, SaturationOfBlockRecruitment) {
  const std::string rej = R"({"candidate":"domain german","decision":"rejected"})"
                          "\n";
  const std::string acc = R"({"candidate":"domain german","decision":"accepted"})"
                          "\n";
  const std::string other = R"({"candidate":"domain drama","decision":"rejected"})"
                            "\n";
  EXPECT_NE(spawn_saturation(false, "", "german", false, true, 2), "");          // no block recruitment at all
  EXPECT_NE(spawn_saturation(true, "", "german", true, true, 2), "");            // it has its block
  EXPECT_NE(spawn_saturation(true, "", "german", false, false, 2), "");          // no free slot
  EXPECT_EQ(spawn_saturation(true, "", "german", false, true, 2), "");           // never tried
  EXPECT_EQ(spawn_saturation(true, rej + other, "german", false, true, 2), "");  // one rejection of two
  EXPECT_NE(spawn_saturation(true, rej + other + rej, "german", false, true, 2), "");
  EXPECT_EQ(spawn_saturation(true, rej + acc, "german", false, true, 2), "");  // the last one was accepted
  EXPECT_EQ(spawn_saturation(true, rej + rej, "drama", false, true, 1), "");   // another domain's log
}
