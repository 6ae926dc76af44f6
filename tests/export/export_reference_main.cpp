// SPDX-License-Identifier: Apache-2.0
// export_reference_main.cpp: what localist computes for a checkpoint's LLM, written as a
// safetensors file for tests/export/check_hf_export.py to hold an exported model to:
// logits at λ ∈ {0, 0.5, 1} without rules, with route rules and with point rules, on
// fixed windows, through the path training and eval take (fused kernels); and at λ = 0.5
// with both rules, the traced attention, π, gates and blocks of every layer; with a domain
// route, the logits of text tagged with that domain. --pool: the pool's held-out windows,
// every LLM's bits on them, argmin routing and the mixture, as `localist eval` has them.
// Usage: localist_export_reference CHECKPOINT LLM OUT.safetensors [TEXT_FILE]
//        (TEXT_FILE: the windows are that text's first tokens instead of random ids)
//        localist_export_reference --pool CHECKPOINT DIAL OUT.safetensors
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "checkpoint/safetensors.h"
#include "core/error.h"
#include "core/file_util.h"
#include "launch/loaded_checkpoint.h"
#include "launch/pool_commands.h"
#include "pool/pool_eval.h"
#include "pool/pool_routing.h"

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

// The pool's held-out windows (eval's set), every LLM's bits (untagged), the argmin choice
// by the first 16 tokens and the mixture's bits.
void pool_reference(const std::string& checkpoint, double dial, const std::string& out_path) {
  LoadedCheckpoint c = load_checkpoint(checkpoint, "cpu");
  const EvalSet set = eval_set_load(c.cfg.data, c.cfg.model.context, c.cfg.train.eval_windows);
  const auto texts = c.tokenizer->token_texts();
  const EvalInputs in = eval_inputs_for(c, texts);
  std::vector<at::Tensor> bits;
  for (const auto& name : c.llm_names()) {
    c.select(name);
    const RuleSet rules = rules_for(c, "", true, nullptr);
    bits.push_back(pool_window_bits(*c.model, set, &rules, std::vector<double>(c.cfg.model.n_layers, dial), in));
  }
  const auto all = at::stack(bits, 0);
  const auto priors = pool_priors(c.cfg, c.meta.step, c.llm_names());
  std::vector<std::string> domains;
  std::vector<int64_t> domain_index;
  for (const auto& d : set.domains) {
    auto it = std::find(domains.begin(), domains.end(), d);
    if (it == domains.end()) it = domains.insert(domains.end(), d);
    domain_index.push_back(it - domains.begin());
  }
  std::string names;
  for (const auto& d : domains) names += (names.empty() ? "" : ",") + d;
  safetensors_write(out_path,
                    {{"windows", set.tokens},
                     {"domain", at::tensor(domain_index, at::kLong)},
                     {"bits", all},
                     {"argmin", route_argmin(all, 16)},
                     {"mixture_bits", route_mixture_bits(all, priors)},
                     {"priors", at::tensor(priors, at::kDouble)}},
                    {{"domains", names}});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--pool") {
    try {
      pool_reference(argv[2], std::atof(argv[3]), argv[4]);
      return 0;
    } catch (const Error& e) {
      std::fprintf(stderr, "localist_export_reference: %s\n", e.what());
      return 1;
    }
  }
  if (argc != 4 && argc != 5) {
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
    at::Tensor tokens = at::randint(m.vocab_size(), {N, T}, gen, at::kLong);
    if (argc == 5) {  // real text
      std::vector<uint32_t> ids;
      c.tokenizer->encode(read_file(argv[4]), ids);
      if (static_cast<int64_t>(ids.size()) < N * T) throw Error(std::string(argv[4]) + ": too short for the windows");
      tokens = at::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + N * T), at::kLong).view({N, T});
    }
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
    // Text tagged with a domain that has a recruited block: every token routed there.
    for (const auto& route : c.domain_routes) {
      RuleMasks tagged;
      tagged.route_block = at::full({N, T}, route.slot, at::kLong);
      ForwardOptions o;
      o.dial.assign(L, 0.5);
      o.rules = &tagged;
      out.emplace_back("domain/" + route.domain, m.forward(tokens, o).logits);
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
    // The tokenizer: ids of a text with what tokenizers get wrong (leading spaces, tabs,
    // CRLF, digits, accents, a wide character, a character outside the training text).
    const std::string sample = "  Probe,\ttext 0123\r\n ünïcöde Ａ — ROMEO: what light";
    std::vector<uint32_t> ids;
    c.tokenizer->encode(sample, ids);
    out.emplace_back("tokenizer/sample_ids", at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong));
    safetensors_write(argv[3], out, {{"checkpoint", c.dir}, {"llm", c.llm}, {"sample_text", sample}});
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "localist_export_reference: %s\n", e.what());
    return 1;
  }
}
