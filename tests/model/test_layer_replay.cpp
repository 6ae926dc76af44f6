// SPDX-License-Identifier: Apache-2.0
// test_layer_replay.cpp: a step with `checkpoint_activations` against the plain
// path on the same model — the loss, Ω, I_π and every parameter's gradient bit for bit
// (float32 and float64), with dropout, λ ∈ {0, 0.5, 1}, point and route rules and an
// inactive block — and the generator left where the plain path leaves it.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <torch/csrc/autograd/function.h>

#include <set>
#include <string>
#include <vector>

#include "model/localist_model.h"
#include "model/rules.h"
#include "tests/model/text_tokens.h"

using namespace localist;
using localist::test::text_tokens;

namespace {

ModelConfig replay_config() {
  ModelConfig c;
  c.d_model = 16;
  c.n_layers = 3;
  c.context = 13;  // not a power of two
  c.heads_per_block = 2;
  c.head_dim = 4;
  c.k_initial = 3;  // slot 3 inactive
  c.k_max = 4;
  c.anchor_dim = 4;
  c.ffn_mult = 2;
  c.dropout = 0.2;  // the replay must draw the same masks
  return c;
}

// How many nodes of loss's autograd graph are replayed layers.
int replayed_layers(const at::Tensor& loss) {
  std::vector<torch::autograd::Node*> todo{loss.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  int n = 0;
  while (!todo.empty()) {
    auto* node = todo.back();
    todo.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (node->name().find("CheckpointedLayer") != std::string::npos) ++n;
    for (const auto& e : node->next_edges()) todo.push_back(e.function.get());
  }
  return n;
}

struct StepResult {
  double loss = 0;
  std::vector<at::Tensor> grads;
  at::Tensor rng_after;
};

StepResult step(LocalistModel& m, const at::Tensor& x, const RuleMasks* rules, double dial, bool replay) {
  at::manual_seed(42);
  m.zero_grad();
  ForwardOptions o;
  o.dial.assign(m.config().n_layers, dial);
  o.penalties = true;
  o.rules = rules;
  o.checkpoint_activations = replay;
  const auto r = m.forward(x, o);
  auto loss = at::cross_entropy_loss(r.logits.reshape({-1, r.logits.size(-1)}), at::roll(x, -1, 1).reshape({-1}));
  for (size_t l = 0; l < r.omega.size(); ++l) loss = loss + 0.3 * r.omega[l] - 0.2 * r.mutual_info[l];
  EXPECT_EQ(replayed_layers(loss), replay ? m.config().n_layers : 0);
  loss.backward();
  StepResult s;
  s.loss = loss.item<double>();
  for (const auto& p : m.parameters()) s.grads.push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
  s.rng_after = at::detail::getDefaultCPUGenerator().get_state();
  return s;
}

void expect_identical(const StepResult& a, const StepResult& b, const std::string& what) {
  EXPECT_EQ(a.loss, b.loss) << what;
  ASSERT_EQ(a.grads.size(), b.grads.size());
  int defined = 0;
  for (size_t i = 0; i < a.grads.size(); ++i) {
    ASSERT_EQ(a.grads[i].defined(), b.grads[i].defined()) << what << ", parameter " << i;
    if (!a.grads[i].defined()) continue;
    ++defined;
    EXPECT_TRUE(at::equal(a.grads[i], b.grads[i]))
        << what << ", parameter " << i << ": max |diff| " << (a.grads[i] - b.grads[i]).abs().max().item<double>();
  }
  EXPECT_GT(defined, 10) << what;
  EXPECT_TRUE(at::equal(a.rng_after, b.rng_after)) << what << ": the replay moved the generator";
}

}  // namespace

TEST(ActivationCheckpoint, BitIdenticalToThePlainPath) {
  const ModelConfig c = replay_config();
  const RuleSet rules = RuleSet::parse(R"J({"rules": [
      {"kind": "route", "name": "vowels", "match": {"regex": "[aeiou]"}, "block": 2},
      {"kind": "point", "query": {"regex": "\\)"}, "target": {"regex": "\\("}}]})J",
                                       "rules.json", c.k_max);
  const auto x = text_tokens({"(ab)cd(ef)ghi", "x(yz)uv(w)abo", "no rule here!"});
  std::vector<std::string> texts(256);
  for (int i = 0; i < 256; ++i) texts[i] = std::string(1, static_cast<char>(i));
  const RuleMasks masks = rules.masks(x, {"d", "d", "d"}, texts, at::kCPU);
  for (const auto dtype : {at::kFloat, at::kDouble}) {
    LocalistModel m(c, 256, 7);
    m.to(dtype);
    m.train();
    for (double dial : {0.0, 0.5, 1.0}) {
      for (const RuleMasks* r : {static_cast<const RuleMasks*>(nullptr), &masks}) {
        const std::string what = std::string(dtype == at::kFloat ? "float32" : "float64") + ", dial " +
                                 std::to_string(dial) + (r ? ", rules" : "");
        expect_identical(step(m, x, r, dial, false), step(m, x, r, dial, true), what);
      }
    }
  }
}

// The shape of the e2e test (tests/e2e/test_cli.cpp): defaults, width 32, heads of 8,
// context 32, dropout 0.1, one sequence.
TEST(ActivationCheckpoint, BitIdenticalAtTheCliTestShape) {
  ModelConfig c;
  c.d_model = 32, c.head_dim = 8, c.context = 32, c.dropout = 0.1;
  LocalistModel m(c, 256, 7);
  m.train();
  const auto x = text_tokens({"First Citizen: Before we proceed"});
  expect_identical(step(m, x, nullptr, 0.5, false), step(m, x, nullptr, 0.5, true), "cli shape");
}

// The replay is for training only: evaluation (no grad) and traces take the plain path.
TEST(ActivationCheckpoint, EvaluationAndTracesAreUnchanged) {
  LocalistModel m(replay_config(), 256, 3);
  m.eval();
  const auto x = text_tokens({"abcdefghijklm"});
  ForwardOptions o;
  o.dial = {0.5, 0.5, 0.5};
  o.trace = true;
  o.checkpoint_activations = true;
  const auto traced = m.forward(x, o);
  EXPECT_EQ(traced.traces.size(), 3u);
  o.trace = false;
  at::NoGradGuard no_grad;
  o.checkpoint_activations = false;
  const auto plain = m.forward(x, o);
  o.checkpoint_activations = true;
  EXPECT_TRUE(at::equal(plain.logits, m.forward(x, o).logits));
  // Traces take the unfused attention (they keep α), so they equal the fused plain pass
  // within rounding; a trace is never replayed, so it is the same with or without it.
  o.trace = true;
  o.checkpoint_activations = false;
  EXPECT_TRUE(at::equal(m.forward(x, o).logits, traced.logits));
  EXPECT_LE((plain.logits - traced.logits).abs().max().item<double>(), 1e-5);
}
