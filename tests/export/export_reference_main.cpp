// SPDX-License-Identifier: Apache-2.0
// export_reference_main.cpp: what localist computes for a checkpoint's LLM, written as a
// safetensors file for tests/export/check_hf_export.py to hold an exported model to:
// logits at λ ∈ {0, 0.5, 1} without rules, with route rules and with point rules, on
// fixed windows, through the path training and eval take (fused kernels); and at λ = 0.5
// with both rules, the traced attention, π, gates and blocks of every layer.
// Usage: localist_export_reference CHECKPOINT LLM OUT.safetensors
#include <ATen/ATen.h>

#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "export/safetensors.h"
#include "launch/loaded_checkpoint.h"

using namespace localist;

namespace {

// Route rules on every third token (the active blocks in turn), point rules: query i to
// key i − 2 on every fourth, and to every key of the second active block on every fifth.
RuleMasks make_rules(int64_t N, int64_t T, const std::vector<int64_t>& active, bool route, bool point) {
  RuleMasks r;
  const int64_t K = static_cast<int64_t>(active.size());
  if (route) {
    r.route_block = at::full({N, T}, -1, at::kLong);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t t = n; t < T; t += 3) r.route_block[n][t] = active[(t / 3 + n) % K];
  }
  if (point) {
    r.point_targets = at::zeros({N, T, T}, at::kBool);
    r.point_block = at::full({N, T}, -1, at::kLong);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t t = 2; t < T; ++t) {
        if (t % 4 == 0) r.point_targets[n][t][t - 2] = true;
        if (t % 5 == 0) r.point_block[n][t] = active[1 % K];
      }
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: localist_export_reference CHECKPOINT LLM OUT.safetensors\n");
    return 2;
  }
  try {
    LoadedCheckpoint c = load_checkpoint(argv[1], "cpu");
    c.select(argv[2]);
    LocalistModel& m = *c.model;
    m.eval();
    at::NoGradGuard no_grad;
    const int64_t N = 2, T = m.config().context, L = m.config().n_layers;
    auto gen = at::detail::createCPUGenerator(5);
    const auto tokens = at::randint(m.vocab_size(), {N, T}, gen, at::kLong);
    const auto active = m.active_slots();
    std::vector<std::pair<std::string, at::Tensor>> out = {{"tokens", tokens}};
    const char* variants[3] = {"none", "route", "point"};
    std::vector<RuleMasks> rules = {RuleMasks(), make_rules(N, T, active, true, false),
                                    make_rules(N, T, active, false, true)};
    for (const auto& [name, r] : {std::pair{"route", rules[1]}, std::pair{"point", rules[2]}}) {
      if (r.route_block.defined()) out.emplace_back(std::string("rules/") + name + "/route_block", r.route_block);
      if (r.point_targets.defined()) {
        out.emplace_back(std::string("rules/") + name + "/point_targets", r.point_targets);
        out.emplace_back(std::string("rules/") + name + "/point_block", r.point_block);
      }
    }
    for (double dial : {0.0, 0.5, 1.0}) {
      for (int v = 0; v < 3; ++v) {
        ForwardOptions o;
        o.dial.assign(L, dial);
        o.rules = v == 0 ? nullptr : &rules[v];
        out.emplace_back("logits/" + std::to_string(static_cast<int>(dial * 10)) + "/" + variants[v],
                         m.forward(tokens, o).logits);
      }
    }
    // Traces at λ = 0.5 with route and point rules together.
    RuleMasks both = make_rules(N, T, active, true, true);
    out.emplace_back("rules/both/route_block", both.route_block);
    out.emplace_back("rules/both/point_targets", both.point_targets);
    out.emplace_back("rules/both/point_block", both.point_block);
    ForwardOptions o;
    o.dial.assign(L, 0.5);
    o.rules = &both;
    o.trace = true;
    const ForwardResult r = m.forward(tokens, o);
    out.emplace_back("trace/logits", r.logits);
    for (int64_t l = 0; l < L; ++l) {
      const LayerTrace& t = r.traces[l];
      const std::string p = "trace/" + std::to_string(l) + "/";
      out.emplace_back(p + "alpha", t.alpha);
      out.emplace_back(p + "pi", t.pi);
      out.emplace_back(p + "gate", t.gate);
      out.emplace_back(p + "block", r.active_blocks.index_select(0, t.hard.flatten()).view(t.hard.sizes()));
      out.emplace_back(p + "rule_fired", t.rule_fired);
    }
    safetensors_write(argv[3], out, {{"checkpoint", c.dir}, {"llm", c.llm}});
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "localist_export_reference: %s\n", e.what());
    return 1;
  }
}
