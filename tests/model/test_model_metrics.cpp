// SPDX-License-Identifier: Apache-2.0
// test_model_metrics.cpp: M7 metrics against straightforward loops on a traced forward
// pass; M8 bounds hold on every query for random logits and for a briefly trained
// model, and a broken input is caught (the check can fail); M6 rules: route forces
// one-hot routing, point raises fidelity on its targets, and swapping rules changes
// behaviour without touching weights.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <cmath>

#include "core/error.h"
#include "model/localist_model.h"
#include "model/metrics.h"
#include "model/rules.h"
#include "tests/model/text_tokens.h"

using namespace localist;
using localist::test::text_tokens;

namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.d_model = 16;
  c.n_layers = 2;
  c.context = 12;
  c.heads_per_block = 1;
  c.head_dim = 4;
  c.k_initial = 4;
  c.k_max = 4;
  c.anchor_dim = 4;
  c.ffn_mult = 2;
  c.gamma = 6.0;
  c.rho = 5.0;
  return c;
}

std::vector<std::string> byte_texts(int64_t vocab) {
  std::vector<std::string> t(vocab);
  for (int64_t i = 0; i < std::min<int64_t>(vocab, 256); ++i) t[i] = std::string(1, static_cast<char>(i));
  return t;
}

}  // namespace

TEST(Metrics, MatchLoopsOnATracedForward) {
  LocalistModel m(small_config(), 256, 4);
  const auto x = text_tokens({"hello world!", "(a (b) c) de"});
  const auto y = at::roll(x, -1, 1);
  ForwardOptions o;
  o.dial = {0.6, 0.3};
  o.trace = true;
  const ForwardResult r = m.forward(x, o);
  std::vector<int64_t> bytes(256, 1);
  MetricsAccumulator acc(m.config(), bytes);
  acc.add(r, y, -1);
  const EvalMetrics got = acc.finish();

  double ent_w = 0, ent_u = 0, fid = 0, top1 = 0;
  int64_t n_ent = 0, n_fid = 0;
  std::vector<double> fid_layer, ent_layer;  // per layer, as the report shows them
  for (const auto& tr : r.traces) {
    const double fid0 = fid, ent0 = ent_w;
    const int64_t n_fid0 = n_fid, n_ent0 = n_ent;
    const auto a = tr.alpha.to(at::kDouble), g = tr.gate.to(at::kDouble);
    for (int64_t b = 0; b < 2; ++b) {
      for (int64_t i = 0; i < 12; ++i) {
        double gsum = 0;
        for (int64_t k = 0; k < 4; ++k) gsum += g[b][i][k].item<double>();
        double w_ent = 0, u_ent = 0;
        for (int64_t h = 0; h < 4; ++h) {
          double e = 0, mass = 0, best = -1;
          int64_t arg = 0;
          bool any = false;
          for (int64_t j = 0; j <= i; ++j) {
            const double p = a[b][h][i][j].item<double>();
            if (p > 0) e -= p * std::log2(p);
            if (p > best) best = p, arg = j;
            if (tr.hard[b][j].item<int64_t>() == h) mass += p, any = true;
          }
          w_ent += g[b][i][h].item<double>() / gsum * e;
          u_ent += e / 4;
          if (any) {
            fid += mass;
            top1 += tr.hard[b][arg].item<int64_t>() == h;
            ++n_fid;
          }
        }
        if (i >= 1) ent_w += w_ent, ent_u += u_ent, ++n_ent;
      }
    }
    fid_layer.push_back((fid - fid0) / static_cast<double>(n_fid - n_fid0));
    ent_layer.push_back((ent_w - ent0) / static_cast<double>(n_ent - n_ent0));
  }
  ASSERT_EQ(got.own_fidelity_per_layer.size(), r.traces.size());
  for (size_t l = 0; l < r.traces.size(); ++l) {
    EXPECT_NEAR(got.own_fidelity_per_layer[l], fid_layer[l], 1e-5) << "layer " << l;
    EXPECT_NEAR(got.attn_entropy_per_layer[l], ent_layer[l], 1e-5) << "layer " << l;
  }
  EXPECT_NEAR(got.attn_entropy, ent_w / n_ent, 1e-5);
  EXPECT_NEAR(got.attn_entropy_unweighted, ent_u / n_ent, 1e-5);
  EXPECT_NEAR(got.own_fidelity_mass, fid / n_fid, 1e-5);
  EXPECT_NEAR(got.own_fidelity_top1, top1 / n_fid, 1e-9);
  EXPECT_EQ(got.own_pairs, n_fid);
  // LM metrics: cross-entropy by loops over log-softmax.
  const auto logp = at::log_softmax(r.logits.to(at::kDouble), -1);
  double ce = 0;
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t t = 0; t < 12; ++t) ce -= logp[b][t][y[b][t].item<int64_t>()].item<double>();
  }
  EXPECT_NEAR(got.ce_nats, ce / 24, 1e-9);
  EXPECT_NEAR(got.bits_per_byte, ce / 24 / std::log(2.0), 1e-9);
  double share_sum = 0;
  for (double s : got.block_share) share_sum += s;
  EXPECT_NEAR(share_sum, 1.0, 1e-9);
}

TEST(Bounds, HoldOnRandomLogitsAndCatchBrokenInput) {
  auto gen = at::detail::createCPUGenerator(21);
  const int64_t B = 3, H = 2, T = 16;
  for (double dial : {0.0, 0.5, 1.0}) {
    const auto scores = at::empty({B, H, T, T}, at::kDouble).normal_(0, 3, gen);
    const auto pi = at::softmax(at::empty({B, T, H}, at::kDouble).normal_(0, 2, gen), -1);
    const auto pi_key = pi.permute({0, 2, 1}).unsqueeze(2);  // head h serves block h
    const auto causal = at::ones({T, T}, at::kBool).triu(1);
    const auto z = (scores - dial * 6.0 * (1.0 - pi_key)).masked_fill(causal, -INFINITY);
    const auto alpha = at::softmax(z, -1);
    const auto hard = pi.argmax(-1);
    const auto on = hard.unsqueeze(1).unsqueeze(2).eq(at::arange(H).view({1, H, 1, 1})).expand({B, H, T, T});
    const auto fired = at::zeros({B, T}, at::kBool);
    const BoundCheck bc = bounds_check(alpha, z, scores, pi_key, on, fired, dial, 6.0, 0.0, 0.1);
    const auto v = bc.valid;
    ASSERT_GT(v.sum().item<int64_t>(), 20);
    EXPECT_TRUE(bc.eps_holds.masked_select(v).all().item<bool>()) << "dial " << dial;
    EXPECT_TRUE(bc.entropy_holds.masked_select(v).all().item<bool>()) << "dial " << dial;
    EXPECT_TRUE(bc.delta_holds.masked_select(v).all().item<bool>()) << "dial " << dial;

    // Test the test: attention that is not softmax(z) (mass moved off target) breaks bound 1
    // on some query, and a logit gap that is too large breaks the Δ bound.
    const auto broken = at::softmax(z + 4.0 * on.logical_not().to(at::kDouble), -1);
    const BoundCheck bad = bounds_check(broken, z, scores, pi_key, on, fired, dial, 6.0, 0.0, 0.1);
    EXPECT_FALSE(bad.eps_holds.masked_select(v).all().item<bool>());
    const BoundCheck bad_delta = bounds_check(alpha, z, scores * 0.1, pi_key, on, fired, dial, 6.0, 0.0, 0.1);
    EXPECT_FALSE(bad_delta.delta_holds.masked_select(v).all().item<bool>());
  }
}

TEST(Bounds, HoldOnEveryQueryOfATrainedModel) {
  ModelConfig c = small_config();
  LocalistModel m(c, 256, 8);
  const std::string text = "to be or not to be, that is the question: whether tis nobler in the mind to suffer ";
  std::vector<int64_t> ids(text.begin(), text.end());
  const auto all = at::tensor(ids, at::kLong);
  torch::optim::AdamW opt(m.parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0.0));
  at::Tensor first_loss;
  double last = 0;
  for (int step = 0; step < 80; ++step) {
    std::vector<at::Tensor> rows;
    for (int r = 0; r < 4; ++r) rows.push_back(all.narrow(0, (step * 7 + r * 13) % (text.size() - 13), 13));
    const auto batch = at::stack(rows);
    ForwardOptions o;
    o.dial = {0.7, 0.7};
    o.penalties = true;
    const auto res = m.forward(batch.narrow(1, 0, 12), o);
    auto loss = at::cross_entropy_loss(res.logits.reshape({-1, 256}), batch.narrow(1, 1, 12).reshape({-1}));
    for (int l = 0; l < 2; ++l) loss = loss + 0.7 * (0.01 * res.omega[l] - 0.1 * res.mutual_info[l]) / 2;
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (step == 0) first_loss = loss.detach();
    last = loss.item<double>();
  }
  EXPECT_LT(last, first_loss.item<double>());  // it did train
  for (double dial : {0.0, 0.5, 1.0}) {
    ForwardOptions o;
    o.dial = {dial, dial};
    o.trace = true;
    const auto x = all.narrow(0, 0, 72).view({6, 12});
    const auto r = m.forward(x, o);
    MetricsAccumulator acc(c, std::vector<int64_t>(256, 1));
    acc.add(r, at::roll(x, -1, 1), -1);
    const EvalMetrics e = acc.finish();
    EXPECT_GT(e.bound_queries, 100) << "largest block share " << e.max_share << ", I_pi " << e.mutual_info;
    EXPECT_EQ(e.bound_epsilon_holds, 1.0) << "dial " << dial;
    EXPECT_EQ(e.bound_entropy_holds, 1.0) << "dial " << dial;
    EXPECT_EQ(e.bound_delta_holds, 1.0) << "dial " << dial;
  }
}

// A recruited block's domain route (M10) sends every token of that domain's rows to its
// slot and no other row's; a rules file's own route wins where both fire.
TEST(Rules, DomainRoutesComeFirstAndTheFilesRulesWin) {
  const ModelConfig c = small_config();
  const RuleSet file = RuleSet::parse(
      "rules:\n  - {kind: route, name: vowels, match: {regex: \"[aeiou]\"}, block: 1}\n", "route.yaml", c.k_max);
  const RuleSet both = file.with_domain_routes({{"drama", 3}});
  ASSERT_EQ(both.rules().size(), 2u);
  EXPECT_EQ(both.rules()[0].match.domain, "drama");
  const auto x = text_tokens({"xyzab", "xyzab"});
  const auto m = both.masks(x, {"drama", "encyclopedia"}, byte_texts(256), at::kCPU);
  const std::vector<int64_t> want{3, 3, 3, 1, 3, -1, -1, -1, 1, -1};  // 'a' is a vowel: the file's rule
  const auto got = m.route_block.flatten();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i].item<int64_t>(), want[i]) << i;
  EXPECT_TRUE(RuleSet().with_domain_routes({}).empty());
}

TEST(Rules, RoutePointAndSwapWithoutTouchingWeights) {
  const ModelConfig c = small_config();
  LocalistModel m(c, 256, 5);
  const RuleSet route = RuleSet::parse(R"(rules:
  - {kind: route, name: vowels, match: {regex: "[aeiou]"}, block: 2}
)",
                                       "route.yaml", c.k_max);
  const RuleSet point = RuleSet::parse(R"J({"rules": [{"kind": "point", "query": {"regex": "\\)"},
                                          "target": {"regex": "\\("}}]})J",
                                       "point.json", c.k_max);
  const auto x = text_tokens({"(ab)cd(ef)gh", "x(yz)uv(w)ab"});
  const auto texts = byte_texts(256);
  const std::vector<std::string> doms{"d", "d"};
  std::vector<double> before;
  for (const auto& p : m.parameters()) before.push_back(p.sum().item<double>());

  ForwardOptions o;
  o.dial = {0.5, 0.5};
  o.trace = true;
  const RuleMasks rm = route.masks(x, doms, texts, at::kCPU);
  o.rules = &rm;
  const auto routed = m.forward(x, o);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t t = 0; t < 12; ++t) {
      const char ch = static_cast<char>(x[b][t].item<int64_t>());
      if (std::string("aeiou").find(ch) == std::string::npos) continue;
      for (const auto& tr : routed.traces) {
        EXPECT_DOUBLE_EQ(tr.pi[b][t][2].item<double>(), 1.0) << "token '" << ch << "'";
        EXPECT_EQ(tr.hard[b][t].item<int64_t>(), 2);
      }
    }
  }

  // Point: ')' attends to the matching most recent '('; fidelity with rho > 0 beats rho = 0.
  const RuleMasks pm = point.masks(x, doms, texts, at::kCPU);
  ASSERT_TRUE(pm.point_targets.defined());
  EXPECT_TRUE(pm.point_targets[0][3][0].item<bool>());   // ")" at 3 -> "(" at 0
  EXPECT_TRUE(pm.point_targets[0][9][6].item<bool>());   // ")" at 9 -> "(" at 6
  EXPECT_FALSE(pm.point_targets[0][9][0].item<bool>());  // not the older one
  auto fidelity = [&](const ModelConfig& cfg) {
    LocalistModel mm(cfg, 256, 5);
    ForwardOptions fo;
    fo.dial = {0.5, 0.5};
    fo.trace = true;
    fo.rules = &pm;
    MetricsAccumulator acc(cfg, std::vector<int64_t>(256, 1));
    acc.add(mm.forward(x, fo), at::roll(x, -1, 1), -1);
    return acc.finish();
  };
  ModelConfig no_bias = c;
  no_bias.rho = 0.0;
  const EvalMetrics with = fidelity(c), without = fidelity(no_bias);
  EXPECT_GT(with.rule_pairs, 0);
  EXPECT_EQ(with.rule_pairs, without.rule_pairs);
  EXPECT_GT(with.rule_fidelity_mass, without.rule_fidelity_mass + 0.3);

  // Swapping rule sets between batches changes the output, not the weights.
  o.rules = &pm;
  const auto pointed = m.forward(x, o);
  o.rules = nullptr;
  const auto plain = m.forward(x, o);
  EXPECT_GT((pointed.logits - plain.logits).abs().max().item<double>(), 1e-4);
  EXPECT_GT((routed.logits - plain.logits).abs().max().item<double>(), 1e-4);
  std::vector<double> after;
  for (const auto& p : m.parameters()) after.push_back(p.sum().item<double>());
  EXPECT_EQ(before, after);
}

TEST(Rules, FileErrorsAreLocated) {
  auto err = [](const std::string& text) {
    try {
      RuleSet::parse(text, "r.yaml", 4);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(err("rules:\n  - {kind: route, match: {regex: a}, block: 9}\n"),
            "r.yaml:2:45: rules[0].block: value 9 is out of range [0, 3]");
  EXPECT_NE(err("rules:\n  - {kind: route, match: {regex: \"(\"}, block: 1}\n").find("invalid regular expression"),
            std::string::npos);
  EXPECT_NE(err("rules:\n  - {kind: point, query: {tokens: [1]}}\n").find("exactly one of `target` or `target_block`"),
            std::string::npos);
  EXPECT_NE(err("rules:\n  - {kind: jump}\n").find("is not one of: route, point"), std::string::npos);
  EXPECT_NE(err("rules:\n  - {kind: route, match: {regex: a, domain: b}, block: 1}\n").find("exactly one of tokens"),
            std::string::npos);
  // What std::regex overflowed on (found by fuzzing) is harmless under RE2: a count too
  // long to be one is literal text (as in Perl), a long escape an octal byte; counts above
  // 1000 and back-references are refused.
  EXPECT_EQ(err("rules:\n  - {kind: route, match: {regex: \"a{99999999999999999999}\"}, block: 1}\n"), "");
  EXPECT_EQ(err("rules:\n  - {kind: route, match: {regex: \"(a)\\\\44444444444444444444\"}, block: 1}\n"), "");
  EXPECT_NE(err("rules:\n  - {kind: route, match: {regex: \"a{2,5000}\"}, block: 1}\n").find("invalid repetition size"),
            std::string::npos);
  EXPECT_NE(err("rules:\n  - {kind: route, match: {regex: \"(a)\\\\1\"}, block: 1}\n").find("invalid escape sequence"),
            std::string::npos);
  // Digits as literals, in a class or escaped braces, are no counts.
  EXPECT_EQ(err("rules:\n  - {kind: route, match: {regex: \"[0-9]{1,3}-12345678 \\\\{99999\"}, block: 1}\n"), "");
  // A pattern a backtracking matcher needs exponential time for: RE2 answers at once (a
  // hang here would end at the test's timeout), and right (no 'c', no match).
  const RuleSet slow =
      RuleSet::parse("rules:\n  - {kind: route, match: {regex: \"(a|aa)*c\"}, block: 1}\n", "r.yaml", 4);
  std::vector<std::string> texts(256);
  for (int i = 0; i < 256; ++i) texts[i] = std::string(1, static_cast<char>(i));
  std::vector<int64_t> ids(2000, 'a');
  const auto none = pattern_match(slow.rules()[0].match, ids.data(), static_cast<int64_t>(ids.size()), "", texts);
  EXPECT_EQ(std::count(none.begin(), none.end(), true), 0);
  ids.back() = 'c';
  const auto all = pattern_match(slow.rules()[0].match, ids.data(), static_cast<int64_t>(ids.size()), "", texts);
  EXPECT_EQ(std::count(all.begin(), all.end(), true), 2000);
}
