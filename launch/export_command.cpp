// SPDX-License-Identifier: Apache-2.0
// export_command.cpp: see export_command.h. The card's numbers come from the same
// evaluate() as `localist eval`, on the same held-out windows.
#include "launch/export_command.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/file_util.h"
#include "export/gpt2_export.h"
#include "export/hf_export.h"
#include "export/hf_model_card.h"
#include "launch/loaded_checkpoint.h"
#include "launch/pool_commands.h"
#include "report/model_card.h"
#include "trainer/evaluate.h"

namespace localist {
namespace fs = std::filesystem;
namespace {

// The card's held-out windows (`windows` per held-out source, 0: train.eval_windows), or
// none — with a warning, and the reason in `why` — when the run holds no held-out text.
std::optional<EvalSet> card_eval_set(const LoadedCheckpoint& c, int64_t windows, std::string& why) {
  try {
    return eval_set_load(c.cfg.data, c.cfg.model.context, windows > 0 ? windows : c.cfg.train.eval_windows);
  } catch (const Error& e) {
    spdlog::warn("export: no held-out evaluation for the model card ({})", e.what());
    why = e.what();
    return std::nullopt;
  }
}

std::string heldout_text(const EvalSet& set, int64_t context) {
  return fmt::format("{} windows of {} tokens from the held-out sources", set.tokens.size(0), context);
}

// The card's numbers: the sweep over λ and the results by domain at the trained dial.
void card_numbers(LoadedCheckpoint& c, int64_t windows, HfCardInput& card) {
  std::string why;
  const std::optional<EvalSet> loaded = card_eval_set(c, windows, why);
  if (!loaded) {
    card.heldout_what = "(not evaluated: " + why + ")";
    return;
  }
  const EvalSet& set = *loaded;
  const auto texts = c.tokenizer->token_texts();
  const EvalInputs in = eval_inputs_for(c, texts);
  const RuleSet rules = rules_for(c, "", false, nullptr);
  card.heldout_what = "text: " + heldout_text(set, c.cfg.model.context);
  card.sweep = nlohmann::json::array();
  for (double d : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    card.sweep.push_back(
        eval_metrics_json(evaluate(*c.model, set, std::vector<double>(c.cfg.model.n_layers, d), &rules, in)));
  }
  std::map<std::string, std::vector<int64_t>> rows;
  for (size_t i = 0; i < set.domains.size(); ++i) rows[set.domains[i]].push_back(static_cast<int64_t>(i));
  card.by_domain = nlohmann::json::object();
  for (const auto& [domain, idx] : rows) {
    EvalSet part;
    part.tokens = set.tokens.index_select(0, at::tensor(idx, at::kLong));
    part.domains.assign(idx.size(), domain);
    card.by_domain[domain] = eval_metrics_json(evaluate(*c.model, part, card.dial, &rules, in));
  }
}

// The model's name on its card: the run directory's for main, else the LLM's.
std::string model_name(const LoadedCheckpoint& c) {
  const std::string name = c.llm == "main" ? fs::path(c.dir).parent_path().parent_path().filename().string() : c.llm;
  return name.empty() ? "localist-model" : name;
}

void export_llm(LoadedCheckpoint& c, const ExportArgs& a, const std::string& dir) {
  HfCardInput card;
  card.name = model_name(c);
  card.card = report_model_card(*c.contents, c.llm, *c.model);
  card.dial = checkpoint_trained_dial(c);
  card.sources = c.cfg.data.sources;
  card_numbers(c, a.windows, card);
  HfExportSpec s;
  s.model = c.model.get();
  s.dtype = a.dtype;
  s.dial = card.dial;
  s.domain_routes = c.domain_routes;
  s.tokenizer = c.tokenizer.get();
  s.model_card = hf_model_card(card);
  s.localist = {{"llm", c.llm},
                {"step", c.meta.step},
                {"tokens_seen", c.meta.tokens_seen},
                {"checkpoint", c.dir},
                {"written_by", c.meta.written_by},
                {"exported_by", card.card["software"]}};
  hf_write_model(s, dir);
}

// The λ = 0 reading as GPT-2 (docs/export.md; run_export has checked that it has one);
// the card's numbers are at λ = 0, the dial GPT-2 computes.
void export_gpt2(LoadedCheckpoint& c, const ExportArgs& a, const std::string& dir) {
  std::string why, numbers;
  if (const std::optional<EvalSet> set = card_eval_set(c, a.windows, why)) {
    const EvalInputs in = eval_inputs_for(c, c.tokenizer->token_texts());
    const auto m =
        eval_metrics_json(evaluate(*c.model, *set, std::vector<double>(c.cfg.model.n_layers, 0.0), nullptr, in));
    numbers = fmt::format("{:.4f} bits per token, perplexity {:.2f} ({})", m.at("bits_per_token").get<double>(),
                          m.at("perplexity").get<double>(), heldout_text(*set, c.cfg.model.context));
  } else {
    numbers = "not evaluated (" + why + ")";
  }
  Gpt2ExportSpec s;
  s.model = c.model.get();
  s.tokenizer = c.tokenizer.get();
  s.dtype = a.dtype;
  const auto dial = checkpoint_trained_dial(c);
  std::string trained;
  for (double v : dial) trained += (trained.empty() ? "" : ", ") + fmt::format("{:g}", v);
  s.model_card = fmt::format(
      "---\nlibrary_name: transformers\ntags:\n  - gpt2\n  - localist\n---\n\n# {} as GPT-2 (its λ = 0 reading)\n\n"
      "Exported by `localist export --format gpt2` from step {} of {} (LLM {}). `GPT2LMHeadModel` loads it "
      "without remote code and computes what the localist model computes at λ = 0, the distributed end of its "
      "locality dial. It was trained at λ = [{}]; the dial, the router, the anchors and any domain routes are not "
      "part of GPT-2 — `localist export --format hf` keeps them.\n\nHeld-out at λ = 0: {}.\n",
      model_name(c), c.meta.step, c.dir, c.llm, trained, numbers);
  s.localist = {{"llm", c.llm},         {"step", c.meta.step},  {"tokens_seen", c.meta.tokens_seen},
                {"checkpoint", c.dir},  {"trained_dial", dial}, {"written_by", c.meta.written_by},
                {"reading", "lambda 0"}};
  gpt2_write_model(s, dir);
}

// Every LLM in a directory of its own, pool.json (what pool_localist.py reads), the pool
// class and a README.md that points to each LLM's card.
void export_pool(LoadedCheckpoint& c, const ExportArgs& a, const std::string& tmp) {
  nlohmann::json llms = nlohmann::json::array();
  std::string table = "| LLM | domains it owns | directory |\n|---|---|---|\n";
  for (const auto& name : c.llm_names()) {
    c.select(name);
    fs::create_directory(tmp + "/" + name);
    export_llm(c, a, tmp + "/" + name);
    nlohmann::json domains = nlohmann::json::array();
    std::string owned;
    for (const auto& d : c.cfg.pool.llms.at(c.cfg.pool.index(name)).domains) {
      domains.push_back(d);
      owned += (owned.empty() ? "" : ", ") + d;
    }
    llms.push_back({{"name", name}, {"dir", name}, {"domains", domains}});
    table += fmt::format("| {} | {} | [{}/]({}/README.md) |\n", name, owned.empty() ? "the rest" : owned, name, name);
  }
  const auto priors = pool_priors(c.cfg, c.meta.step, c.llm_names());
  const nlohmann::json pool = {{"llms", llms}, {"priors", priors}, {"route_prefix", 16}, {"step", c.meta.step}};
  write_file_atomic(tmp + "/pool.json", pool.dump(2) + "\n");
  write_file_atomic(tmp + "/pool_localist.py", hf_pool_py());
  const std::string readme =
      "---\nlibrary_name: transformers\ntags:\n  - localist\n  - custom_code\n---\n\n# A pool of " +
      std::to_string(llms.size()) + " localist LLMs\n\nExported by `localist export --pool` from step " +
      std::to_string(c.meta.step) + " of " + c.dir +
      ". Each LLM is a model directory of its own (transformers loads it with "
      "`trust_remote_code=True`; its README.md is its model card). `pool_localist.py` answers a text as "
      "localist does: by its domain tag (the owner of the domain), else by code length — argmin over the "
      "LLMs of the bits of the first 16 tokens, or the Bayesian mixture with weights ∝ prior · "
      "2^(−code length); the priors are each LLM's share of the training data.\n\n" +
      table +
      "\n```python\nimport importlib.util\nspec = importlib.util.spec_from_file_location(\"pool_localist\", "
      "\"pool_localist.py\")\npool_localist = importlib.util.module_from_spec(spec); "
      "spec.loader.exec_module(pool_localist)\npool = pool_localist.LocalistPool.from_pretrained(\".\")\n"
      "name = pool.route(ids)  # or pool.route(ids, domain=\"drama\")\n```\n";
  write_file_atomic(tmp + "/README.md", readme);
}

}  // namespace

int run_export(const ExportArgs& a) {
  if (a.format != "hf" && a.format != "gpt2") throw ConfigError("--format " + a.format + ": not hf or gpt2");
  if (a.pool && !a.llm.empty()) throw ConfigError("--pool and --llm: choose one (the whole pool, or one LLM of it)");
  if (a.pool && a.format == "gpt2") {
    throw ConfigError(
        "--pool with --format gpt2: GPT-2 holds one LLM; export each with --llm NAME, or the pool "
        "with --format hf");
  }
  LoadedCheckpoint c = load_checkpoint(a.checkpoint, "cpu");
  if (!a.llm.empty()) c.select(a.llm);                  // throws naming the pool's LLMs
  if (a.format == "gpt2") gpt2_export_check(*c.model);  // before --out is touched
  hf_export_atomically(a.out, [&](const std::string& tmp) {
    if (a.format == "gpt2") {
      export_gpt2(c, a, tmp);
    } else if (!a.pool) {
      export_llm(c, a, tmp);
    } else {
      export_pool(c, a, tmp);
    }
  });
  std::cout << "exported " << (a.format == "gpt2" ? "as GPT-2 (its λ = 0 reading) " : "")
            << (a.pool ? fmt::format("the pool of {} LLMs", c.llm_names().size()) : "LLM " + c.llm) << " of " << c.dir
            << " (step " << c.meta.step << ") to " << a.out << "\n";
  return kExitOk;
}

}  // namespace localist
