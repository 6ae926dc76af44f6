// SPDX-License-Identifier: Apache-2.0
// test_recruiter.cpp: a rejected recruitment trial leaves every parameter, buffer and
// optimizer moment bit-identical; an accepted one changes only the new block and the
// router; the trial's held-out bits equal a direct recount.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <cmath>

#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpoint_schema.h"
#include "data/batch_reader.h"
#include "data/prepare.h"
#include "recruitment/recruiter.h"
#include "recruitment/trial.h"
#include "tests/test_util.h"

using namespace localist;

namespace {

struct Snapshot {
  std::vector<at::Tensor> params, buffers, moments;
};

Snapshot snapshot(LocalistModel& m, torch::optim::AdamW& opt) {
  Snapshot s;
  for (const auto& t : m.parameters()) {
    s.params.push_back(t.detach().clone());
    auto* st = checkpoint_adam_state(opt, t);
    s.moments.push_back(st ? st->exp_avg().clone() : at::Tensor());
    s.moments.push_back(st ? st->exp_avg_sq().clone() : at::Tensor());
  }
  for (const auto& t : m.buffers()) s.buffers.push_back(t.detach().clone());
  return s;
}

// A whole recruitment round as a group without block parallelism runs it (owner 0).
nlohmann::json recruitment_round(Recruiter& r, int64_t step, const std::vector<double>& dial, double lr) {
  nlohmann::json rec = r.begin_round(step, dial);
  r.prune(step, dial, rec);
  const BlockDecision d = r.try_candidate(step, dial, lr, rec);
  r.commit(step, d, 0, rec);
  return rec;
}

}  // namespace

// A trial on real text (every token counts as unexplained, so there is a candidate):
// rejected (δ huge), the model, its buffers and the main optimizer's moments equal the
// state before the round bit for bit; accepted (δ 0, a long horizon), the new slot is
// on, its output columns trained from zero, and everything but that block and the
// router is unchanged.
TEST(Recruiter, ARejectedTrialRestoresEverythingAndATrialTrainsOnlyTheBlockAndRouter) {
  test::TempDir dir;
  const std::string text = test::read_text(test::corpus("tinyshakespeare.txt"));
  test::write_text(dir / "drama.txt", text.substr(0, 200000));
  DataConfig data;
  data.shard_dir = dir / "shards";
  data.sources.push_back({"drama", dir / "drama.txt", "drama", "blank_line", 1.0, 0, true});
  prepare_shards(data, false, nullptr);
  ModelConfig mc;
  mc.d_model = 32, mc.head_dim = 8, mc.context = 32, mc.k_initial = 2, mc.k_max = 4, mc.anchor_dim = 4;
  const BatchReader reader(data, mc.context, 5, 8);
  LocalistModel model(mc, 258, 3);
  torch::optim::AdamW opt(model.parameters(), torch::optim::AdamWOptions(1e-3));
  const auto x = at::randint(256, {2, 32}, at::kLong);
  ForwardOptions fo;
  fo.dial = {0.5, 0.5};
  model.forward(x, fo).logits.pow(2).mean().backward();
  opt.step();
  model.zero_grad();

  RecruiterSetup rs;
  rs.config.enabled = true;
  rs.config.interval = 10;
  rs.config.probe_windows = 8;
  rs.config.phi = 1.01;  // every token unexplained
  rs.config.n_min = 16;
  rs.config.n_try = 3;
  rs.config.delta = 1e15;
  rs.trial.model = &model;
  rs.moments = adamw_moments(opt);
  rs.trial.reader = &reader;
  rs.trial.ranks = local_communicator();
  rs.trial.source_domains = {"drama"};
  rs.trial.seed = 5;
  rs.trial.batch = 8, rs.trial.micro_batch = 4, rs.total_steps = 100;
  // The trial's held-out bits per window against a direct recount: each window's mean of
  // -log2 p over its tokens, from the model's logits in float64 (tolerance 1e-4 bits).
  {
    TrialSetup ts;
    ts.model = &model, ts.reader = &reader, ts.source_domains = {"drama"}, ts.ranks = local_communicator();
    ts.micro_batch = 3, ts.batch = 8, ts.seed = 5;
    const Trial trial(ts);
    std::vector<SampleRef> refs;
    for (int64_t i = 0; i < 7; ++i) refs.push_back(reader.sampler().sample(3, i));
    const HeldoutBits h = trial.heldout_bits(refs, {0.5, 0.5}, RuleSet());
    ASSERT_EQ(h.window_bits.size(), refs.size());
    EXPECT_EQ(h.tokens, 7.0 * mc.context);
    const TokenBatch batch = reader.read_refs(refs);
    const auto rows =
        at::tensor(std::vector<int64_t>(batch.tokens.begin(), batch.tokens.end())).view({7, mc.context + 1});
    at::NoGradGuard no_grad;
    model.eval();
    ForwardOptions eo;
    eo.dial = {0.5, 0.5};
    const auto logp = at::log_softmax(model.forward(rows.narrow(1, 0, mc.context), eo).logits.to(at::kDouble), -1);
    const auto bits = -logp.gather(-1, rows.narrow(1, 1, mc.context).unsqueeze(-1)).squeeze(-1) / std::log(2.0);
    model.train();
    double mean = 0;
    for (int64_t w = 0; w < 7; ++w) {
      EXPECT_NEAR(h.window_bits[w], bits[w].mean().item<double>(), 1e-4) << "window " << w;
      mean += h.window_bits[w] / 7;
    }
    EXPECT_NEAR(h.mean, mean, 1e-9);
  }
  Recruiter rejecting(rs);
  const Snapshot before = snapshot(model, opt);
  const auto rec = recruitment_round(rejecting, 10, {0.5, 0.5}, 1e-3);
  ASSERT_EQ(rec.at("decision"), "rejected") << rec.dump();
  EXPECT_EQ(rec.at("candidate"), "domain drama");
  const Snapshot after = snapshot(model, opt);
  for (size_t i = 0; i < before.params.size(); ++i) EXPECT_TRUE(at::equal(before.params[i], after.params[i])) << i;
  for (size_t i = 0; i < before.buffers.size(); ++i) EXPECT_TRUE(at::equal(before.buffers[i], after.buffers[i])) << i;
  for (size_t i = 0; i < before.moments.size(); ++i) {
    if (before.moments[i].defined()) {
      EXPECT_TRUE(at::equal(before.moments[i], after.moments[i])) << i;
    }
  }
  EXPECT_NE(rejecting.log().find("\"decision\":\"rejected\""), std::string::npos);

  rs.config.delta = 0;
  rs.config.horizon_steps = int64_t(1) << 40;  // so long that any saving pays
  Recruiter accepting(rs);
  const auto yes = recruitment_round(accepting, 10, {0.5, 0.5}, 1e-3);
  ASSERT_EQ(yes.at("decision"), "accepted") << yes.dump();
  const int64_t slot = yes.at("slot");
  EXPECT_EQ(slot, 2);  // the lowest free slot
  EXPECT_EQ(model.active_slots(), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(accepting.map_epoch(), 1);
  const auto named = model.named_parameters();
  size_t i = 0;
  for (const auto& kv : named) {
    const auto& now = kv.value();
    const auto& was = before.params[i++];
    if (kv.key().find("router_weight") != std::string::npos) continue;  // trained with the block
    if (!checkpoint_is_block_name(kv.key())) {
      EXPECT_TRUE(at::equal(now, was)) << kv.key() << " changed in the trial";
      continue;
    }
    // The other slots' parts are untouched; the new one's output columns left zero.
    for (int64_t s = 0; s < mc.k_max; ++s) {
      if (s == slot) continue;
      const auto& key = kv.key();
      const bool is_out = key.find("out_weight") != std::string::npos;
      const auto part = is_out ? now.narrow(1, s * 8, 8) : now.view({3, mc.k_max * 8, -1}).narrow(1, s * 8, 8);
      const auto part_was = is_out ? was.narrow(1, s * 8, 8) : was.view({3, mc.k_max * 8, -1}).narrow(1, s * 8, 8);
      EXPECT_TRUE(at::equal(part, part_was)) << key << " slot " << s;
    }
  }
  auto& L0 = *model.layers[0];
  EXPECT_GT(block_slot_views(L0.qkv_w, L0.qkv_b, L0.out_w, mc, slot)[6].abs().max().item<double>(), 0.0);
  // The block was recruited for a domain: that domain now routes to it (also in the state a
  // checkpoint keeps), and it is no candidate again.
  EXPECT_EQ(yes.at("route_domain"), "drama");
  ASSERT_EQ(accepting.domain_routes().size(), 1u);
  EXPECT_EQ(accepting.domain_routes()[0].domain, "drama");
  EXPECT_EQ(accepting.domain_routes()[0].slot, slot);
  const auto routes = recruited_domain_routes(accepting.state(), mc.k_max);
  ASSERT_EQ(routes.size(), 1u);
  EXPECT_EQ(routes[0].slot, slot);
  // A quarter of the routed domain's training windows (by default) are shown untagged: a
  // pure function of seed, step and window.
  int hidden = 0;
  for (int64_t start = 0; start < 4000; ++start) {
    const std::string d = accepting.training_domain(11, 0, start);
    EXPECT_TRUE(d.empty() || d == "drama") << d;
    EXPECT_EQ(d, accepting.training_domain(11, 0, start));
    hidden += d.empty();
  }
  EXPECT_NEAR(hidden / 4000.0, rs.config.untagged_fraction, 0.03);
  EXPECT_EQ(rejecting.training_domain(11, 0, 7), "drama") << "a domain without a block keeps its tag";
  const Snapshot accepted = snapshot(model, opt);
  EXPECT_EQ(recruitment_round(accepting, 15, {0.5, 0.5}, 1e-3).at("decision"), "no candidate");
  const Snapshot untouched = snapshot(model, opt);
  for (size_t j = 0; j < accepted.params.size(); ++j)
    EXPECT_TRUE(at::equal(accepted.params[j], untouched.params[j])) << j;
  EXPECT_THROW(recruited_domain_routes(nlohmann::json::parse(R"({"domain_routes": [{"slot": 2}]})"), mc.k_max), Error);
  try {
    recruited_domain_routes(nlohmann::json::parse(R"({"domain_routes": [{"domain": "drama", "slot": 4}]})"), mc.k_max);
    ADD_FAILURE() << "a slot outside [0, k_max) was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("routes domain drama to block slot 4, outside [0, 4)"), std::string::npos)
        << e.what();
  }

  // Pruning over a one-step horizon: the recruited block cannot save the bits it costs
  // (c_blk = 1048·log2 256 + 2 bits against a fraction of a bit per token over 256
  // tokens), so it is switched off and logged; the initial blocks are never weighed.
  rs.config.prune = true;
  rs.config.horizon_steps = 1;
  Recruiter pruning(rs);
  pruning.restore(accepting.state(), accepting.log());
  pruning.restore_epoch(accepting.map_epoch());  // as a resumed run takes it from the block map
  const auto cut = recruitment_round(pruning, 20, {0.5, 0.5}, 1e-3);
  ASSERT_EQ(cut.at("prune").size(), 1u) << cut.dump();
  EXPECT_EQ(cut.at("prune")[0].at("slot"), slot);
  EXPECT_TRUE(cut.at("prune")[0].at("prune").get<bool>()) << cut.dump();
  EXPECT_LT(cut.at("prune")[0].at("saves_bits").get<double>(), cut.at("prune")[0].at("cost_bits").get<double>());
  EXPECT_EQ(cut.at("decision"), "rejected") << "a one-step horizon pays for no block";
  EXPECT_EQ(model.active_slots(), (std::vector<int64_t>{0, 1}));
  EXPECT_NE(pruning.log().find("\"decision\":\"pruned\""), std::string::npos);
  EXPECT_EQ(pruning.map_epoch(), 2);
  EXPECT_TRUE(pruning.domain_routes().empty()) << "a pruned block's domain routes by the router again";
}
