// SPDX-License-Identifier: Apache-2.0
// test_recruitment.cpp: the MDL criterion against hand-computed values (block size,
// cost, gain, J totals, accept/reject at the δ boundary, the symmetric pruning rule);
// candidate formation against a naive recount; k-means recovers separated clusters;
// the running median against a direct computation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/check.h"
#include "core/error.h"
#include "core/mix64.h"
#include "recruitment/candidates.h"
#include "recruitment/mdl.h"

using namespace localist;

TEST(Mdl, BlockParametersAndCost) {
  ModelConfig c;  // the quickstart shape: d 128, 2 layers, 1 head of 32 per block
  c.d_model = 128, c.n_layers = 2, c.heads_per_block = 1, c.head_dim = 32;
  // Per layer: q,k,v rows 3·32·128 = 12288, their biases 96, output columns 128·32 = 4096.
  EXPECT_EQ(mdl_block_parameters(c), 2 * (12288 + 96 + 4096));
  EXPECT_DOUBLE_EQ(mdl_block_cost_bits(32960, 1 << 20, 8), 16480.0 * 20 + 3);
  EXPECT_DOUBLE_EQ(mdl_block_cost_bits(10, 0.5, 4), 5.0 * 1 + 2);  // N_eff floored at 2 tokens
  EXPECT_DOUBLE_EQ(mdl_effective_tokens(0.25, 400, 2048), 0.25 * 400 * 2048);
}

TEST(Mdl, RecruitAcceptsExactlyWhenTheGainExceedsCostPlusDelta) {
  const int64_t p = 1000, k = 8;
  const double n = 1 << 16;  // c = 500·16 + 3 = 8003 bits
  const double c = 8003, delta = 100;
  // bits saved per token so that G = c + delta ± 1 bit.
  const double above = (c + delta + 1) / n, below = (c + delta - 1) / n;
  const MdlDecision yes = mdl_decide_recruit(3.0, 3.0 - above, n, p, k, delta, 500);
  EXPECT_TRUE(yes.accepted) << yes.to_string();
  EXPECT_NEAR(yes.gain_bits, c + delta + 1, 1e-6);
  EXPECT_DOUBLE_EQ(yes.cost_bits, c);
  EXPECT_NEAR(yes.j_before, 3.0 * n + 500, 1e-6);               // CL before + earlier blocks' costs
  EXPECT_NEAR(yes.j_after, (3.0 - above) * n + 500 + c, 1e-6);  // CL after + costs with the new block
  EXPECT_GE(yes.j_before - yes.j_after, delta);
  const MdlDecision no = mdl_decide_recruit(3.0, 3.0 - below, n, p, k, delta, 500);
  EXPECT_FALSE(no.accepted) << no.to_string();
  EXPECT_DOUBLE_EQ(no.j_after, no.j_before);  // nothing changed
  // A trial that made things worse is a rejection with negative gain, not an error.
  const MdlDecision worse = mdl_decide_recruit(3.0, 3.1, n, p, k, 0, 0);
  EXPECT_FALSE(worse.accepted);
  EXPECT_LT(worse.gain_bits, 0);
  EXPECT_THROW(mdl_decide_recruit(3.0, std::nan(""), n, p, k, 0, 0), Error);
}

// The confidence bound (M10 step 5): SE(G) from the per-window paired differences,
// against a hand computation; the decision moves from accept to reject as z·SE crosses
// the margin G − c − δ; pruning uses the upper bound.
TEST(Mdl, DecisionsUseTheGainsConfidenceBound) {
  // Differences 0.1, 0.3, 0.2, 0.4 bits/token: mean 0.25, sample sd sqrt(0.05/3).
  const std::vector<double> before{3.1, 3.3, 3.2, 3.4}, after{3.0, 3.0, 3.0, 3.0};
  const double n = 1000;
  const double se = mdl_gain_standard_error(before, after, n);
  EXPECT_NEAR(se, std::sqrt(0.05 / 3.0) / 2.0 * n, 1e-9);
  EXPECT_DOUBLE_EQ(mdl_gain_standard_error({3.0}, {2.0}, n), 0.0);       // one window: no spread to measure
  EXPECT_THROW(mdl_gain_standard_error({1, 2}, {1}, n), InternalError);  // a caller's bug
  const int64_t p = 10, k = 8;
  const double c = 0.5 * p * std::log2(n) + 3;  // c_blk
  const double g = 0.25 * n;                    // 250 bits, c ≈ 52.8: a margin of ≈ 197 bits
  const double margin = g - c;
  const MdlDecision loose = mdl_decide_recruit(3.25, 3.0, n, p, k, 0, 0, se, 0.5 * margin / se);
  EXPECT_TRUE(loose.accepted) << loose.to_string();
  EXPECT_DOUBLE_EQ(loose.se_bits, se);
  const MdlDecision strict = mdl_decide_recruit(3.25, 3.0, n, p, k, 0, 0, se, 1.5 * margin / se);
  EXPECT_FALSE(strict.accepted) << strict.to_string();
  EXPECT_NE(strict.to_string().find("SE"), std::string::npos);
  // Pruning a block of 60 parameters (c ≈ 302 bits) that saves 250: gone at z = 0, kept
  // once the upper bound G + z·SE reaches its cost.
  const MdlDecision gone = mdl_decide_prune(3.0, 3.25, n, 60, k, 0, 400, se, 0);
  EXPECT_TRUE(gone.accepted) << gone.to_string();
  const MdlDecision pr = mdl_decide_prune(3.0, 3.25, n, 60, k, 0, 400, se, 2 * (gone.cost_bits - g) / se);
  EXPECT_FALSE(pr.accepted) << pr.to_string();
}

TEST(Mdl, PruneIsTheSymmetricRule) {
  const int64_t p = 1000, k = 8;
  const double n = 1 << 16, c = 8003, delta = 100;
  // The block saves (without - with)·N bits; it goes when that is below c - δ.
  const double keeps = (c - delta + 1) / n, goes = (c - delta - 1) / n;
  const MdlDecision stay = mdl_decide_prune(2.0, 2.0 + keeps, n, p, k, delta, c);
  EXPECT_FALSE(stay.accepted) << stay.to_string();
  const MdlDecision gone = mdl_decide_prune(2.0, 2.0 + goes, n, p, k, delta, c);
  EXPECT_TRUE(gone.accepted) << gone.to_string();
  EXPECT_NEAR(gone.j_before, 2.0 * n + c, 1e-6);
  EXPECT_NEAR(gone.j_after, (2.0 + goes) * n, 1e-6);
  EXPECT_GE(gone.j_before - gone.j_after, delta);
}

TEST(Candidates, RunningMedianOverTheLastRounds) {
  RunningMedian m(3);
  EXPECT_DOUBLE_EQ(m.add_round({1, 2, 3}), 2);            // medians {2}
  EXPECT_DOUBLE_EQ(m.add_round({10, 20, 30, 40}), 13.5);  // {2, 25} -> 13.5
  EXPECT_DOUBLE_EQ(m.add_round({5}), 5);                  // {2, 25, 5} -> 5
  EXPECT_DOUBLE_EQ(m.add_round({100, 100}), 25);          // {25, 5, 100} -> 25
  EXPECT_EQ(m.history().size(), 3u);
}

TEST(Candidates, KmeansRecoversSeparatedClusters) {
  const int64_t dim = 4, per = 50;
  std::vector<float> pts;
  std::vector<int> truth;
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < per; ++i) {
      for (int j = 0; j < dim; ++j) {
        const double noise = mix64_unit(mix64(c * 1000 + i * 10 + j)) - 0.5;
        pts.push_back(static_cast<float>((j == c ? 10.0 : 0.0) + noise));
      }
      truth.push_back(c);
    }
  }
  const auto a = kmeans(pts, dim, 3, 50, 7);
  ASSERT_EQ(a.size(), truth.size());
  for (int c = 0; c < 3; ++c) {  // each true cluster maps to exactly one found cluster, and vice versa
    std::set<int32_t> found;
    for (size_t i = 0; i < truth.size(); ++i)
      if (truth[i] == c) found.insert(a[i]);
    EXPECT_EQ(found.size(), 1u) << "cluster " << c;
  }
  std::set<int32_t> all(a.begin(), a.end());
  EXPECT_EQ(all.size(), 3u);
  EXPECT_EQ(kmeans(pts, dim, 3, 50, 7), a);  // deterministic
}

TEST(Candidates, UnexplainedTokensGroupedByDomainAgainstANaiveRecount) {
  std::vector<ProbeToken> t;
  std::vector<float> router;
  for (int i = 0; i < 3000; ++i) {
    ProbeToken p;
    p.domain = i % 3;
    p.bits = static_cast<float>(2.0 + (p.domain == 2 ? 4.0 : 0.0) + mix64_unit(mix64(i)));  // domain 2 codes badly
    p.max_pi = static_cast<float>(p.domain == 1 && i % 2 ? 0.3 : 0.9);  // half of domain 1 is routed vaguely
    t.push_back(p);
    router.push_back(static_cast<float>(p.domain));
  }
  CandidateOptions o;
  o.phi = 0.5, o.kappa = 2.0, o.n_min = 400;
  const double median = 2.5;
  const auto cands = candidates_find(t, router, 1, median, {"wiki", "news", "drama"}, o);
  // Naive recount of each domain's unexplained tokens and their excess bits.
  std::vector<int64_t> count(3, 0);
  std::vector<double> excess(3, 0.0);
  for (const auto& p : t) {
    if (p.max_pi < o.phi || p.bits > median + o.kappa) ++count[p.domain], excess[p.domain] += p.bits - median;
  }
  EXPECT_EQ(count[0], 0);
  ASSERT_EQ(cands.size(), 2u);                // domain 0 has none; domains 1 (500) and 2 (1000) pass n_min
  EXPECT_EQ(cands[0].label, "domain drama");  // the largest excess first
  EXPECT_EQ(static_cast<int64_t>(cands[0].tokens.size()), count[2]);
  EXPECT_NEAR(cands[0].excess_bits, excess[2], 1e-3 * excess[2]);
  EXPECT_EQ(cands[1].label, "domain news");
  EXPECT_EQ(static_cast<int64_t>(cands[1].tokens.size()), count[1]);
  EXPECT_FLOAT_EQ(cands[1].centroid[0], 1.0f);
  o.n_min = 600;
  EXPECT_EQ(candidates_find(t, router, 1, median, {"wiki", "news", "drama"}, o).size(), 1u);
}

TEST(Candidates, UntaggedTokensAreClusteredOnTheirRouterVectors) {
  std::vector<ProbeToken> t;
  std::vector<float> router;
  for (int i = 0; i < 1200; ++i) {
    ProbeToken p;
    p.bits = 9.0f;  // every token unexplained
    p.max_pi = 0.9f;
    t.push_back(p);
    const int c = i % 2;
    router.push_back(static_cast<float>(c ? 5.0 : -5.0) + static_cast<float>(mix64_unit(mix64(i)) - 0.5));
    router.push_back(static_cast<float>(mix64_unit(mix64(i + 7777)) - 0.5));
  }
  CandidateOptions o;
  o.kmeans_k = 2, o.n_min = 100;
  const auto cands = candidates_find(t, router, 2, 2.0, {}, o);
  ASSERT_EQ(cands.size(), 2u);
  for (const auto& c : cands) {
    EXPECT_EQ(c.tokens.size(), 600u) << c.label;
    EXPECT_NEAR(std::fabs(c.centroid[0]), 5.0, 0.1) << c.label;
    EXPECT_EQ(c.label.rfind("cluster ", 0), 0u);
  }
}
