// SPDX-License-Identifier: Apache-2.0
// pool_commands.cpp: see pool_commands.h.
#include "launch/pool_commands.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "core/check.h"
#include "core/error.h"
#include "pool/pool_eval.h"

namespace localist {
namespace fs = std::filesystem;
std::vector<double> pool_priors(const RunConfig& cfg, int64_t step, const std::vector<std::string>& llms) {
  std::vector<double> prior(llms.size(), 0.0);
  for (const auto& s : cfg.data.sources) {
    if (!s.train) continue;
    const std::string& owner = cfg.pool.llms.at(cfg.pool.owner_at(s.domain, step)).name;
    for (size_t i = 0; i < llms.size(); ++i) {
      if (llms[i] == owner) prior[i] += s.weight;
    }
  }
  double total = 0;
  for (double p : prior) total += p;
  // An LLM with no data of its own (a pool that changed since) still gets a small share.
  for (double& p : prior) p = std::max(p / total, 1e-6);
  return prior;
}

int run_pool_eval(LoadedCheckpoint& c, double dial, const std::string& rules_path, const std::string& out_dir,
                  int64_t windows, int64_t route_prefix) {
  const EvalSet set = eval_set_load(c.cfg.data, c.cfg.model.context, windows > 0 ? windows : c.cfg.train.eval_windows);
  const auto texts = c.tokenizer->token_texts();
  const std::vector<std::string> names = c.llm_names();
  // Every LLM's model and rules (the rules file only: windows are scored untagged).
  std::vector<std::shared_ptr<LocalistModel>> models;
  std::vector<RuleSet> rules(names.size());
  PoolEvalSpec spec;
  for (size_t i = 0; i < names.size(); ++i) {
    c.select(names[i]);
    models.push_back(c.model);
    rules[i] = rules_for(c, rules_path, /*plain=*/true, nullptr);
  }
  for (size_t i = 0; i < names.size(); ++i) spec.llms.push_back({names[i], models[i].get(), &rules[i]});
  spec.priors = pool_priors(c.cfg, c.meta.step, names);
  for (const auto& d : set.domains) {
    const std::string& owner = c.cfg.pool.llms.at(c.cfg.pool.owner_at(d, c.meta.step)).name;
    const auto it = std::find(names.begin(), names.end(), owner);
    spec.owner.push_back(it == names.end() ? 0 : static_cast<int>(it - names.begin()));
  }
  spec.route_prefix = route_prefix;
  spec.dial.assign(c.cfg.model.n_layers, dial);
  spec.inputs = eval_inputs_for(c, texts);
  const PoolEvalResult r = pool_evaluate(set, spec);
  std::cout << fmt::format(
      "pool checkpoint {} (step {}): {} LLMs, {} held-out windows of {} tokens, dial {:.2f}; "
      "priors",
      c.dir, c.meta.step, names.size(), set.tokens.size(0), c.cfg.model.context, dial);
  for (size_t i = 0; i < names.size(); ++i) std::cout << fmt::format(" {} {:.3f}", names[i], spec.priors[i]);
  std::cout << "\n" << pool_eval_table(r);
  const std::string out =
      out_dir.empty()
          ? (fs::path(c.dir).parent_path().parent_path() / ("eval-step-" + std::to_string(c.meta.step))).string()
          : out_dir;
  for (const auto& f : pool_eval_write(r, out)) std::cout << "wrote " << f << "\n";
  LOCALIST_CHECK(r.mixture_bound_slack >= -1e-6, "pool eval: the mixture exceeds its bound by ", -r.mixture_bound_slack,
                 " bits on a window");
  return 0;
}

std::string route_prompt(LoadedCheckpoint& c, const std::vector<uint32_t>& ids, double dial,
                         const std::string& rules_path) {
  const std::vector<std::string> names = c.llm_names();
  if (ids.size() < 2) {
    std::cout << "the prompt has fewer than 2 tokens: nothing to route by; answering with main\n";
    return "main";
  }
  // At most one context of the prompt (its end) is scored.
  const size_t keep = std::min(ids.size(), static_cast<size_t>(c.cfg.model.context + 1));
  EvalSet one;
  one.tokens = at::tensor(std::vector<int64_t>(ids.end() - keep, ids.end()), at::kLong).view({1, -1});
  one.domains = {""};
  const auto texts = c.tokenizer->token_texts();
  const EvalInputs in = eval_inputs_for(c, texts);
  std::string best;
  double best_bits = 0;
  std::string line = "prompt code length:";
  for (const auto& n : names) {
    c.select(n);
    const RuleSet rules = rules_for(c, rules_path, true, nullptr);
    const double bits = pool_window_bits(*c.model, one, &rules, std::vector<double>(c.cfg.model.n_layers, dial), in)
                            .sum()
                            .item<double>();
    line += fmt::format(" {} {:.1f} bits", n, bits);
    if (best.empty() || bits < best_bits) best = n, best_bits = bits;
  }
  std::cout << line << " -> " << best << "\n";
  return best;
}

}  // namespace localist
