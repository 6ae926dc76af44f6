// SPDX-License-Identifier: Apache-2.0
// checkpoint_commands.cpp: see checkpoint_commands.h.
#include "launch/checkpoint_commands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "core/error.h"
#include "core/progress_line.h"
#include "data/byte_tokenizer.h"
#include "data/token_shard.h"
#include "launch/dial_arg.h"
#include "launch/loaded_checkpoint.h"
#include "launch/pool_commands.h"
#include "launch/text_preview.h"
#include "model/rules.h"
#include "trainer/evaluate.h"
#include "trainer/generate.h"

namespace localist {
namespace fs = std::filesystem;

int run_eval(const EvalArgs& a) {
  const std::vector<double> dials = dial_arg_parse(a.dial);
  const DialProfile profile = dial_profile_arg_parse(a.dial_profile);
  LoadedCheckpoint c = load_checkpoint(a.checkpoint, a.device);
  if (!a.llm.empty()) c.select(a.llm);
  if (a.llm.empty() && (c.llm_names().size() > 1 || a.by_domain)) {
    // One dial value: the one given, else the checkpoint's own (its schedule's at its step).
    const auto trained = c.contents->state.value("schedules", nlohmann::json::object()).value("dial", nlohmann::json());
    const bool given = a.dial != kDefaultEvalDial;
    const double d = given || !trained.is_array() || trained.empty() ? dials[0] : trained[0].get<double>();
    if (given && dials.size() > 1) spdlog::warn("--dial: a pool is evaluated at one dial value; using {}", d);
    return run_pool_eval(c, d, a.rules_path, a.out_dir, a.windows, a.route_prefix);
  }
  std::string described;
  const RuleSet rules = rules_for(c, a.rules_path, a.no_domain_routes, &described);
  const EvalSet set =
      eval_set_load(c.cfg.data, c.cfg.model.context, a.windows > 0 ? a.windows : c.cfg.train.eval_windows);
  const auto texts = c.tokenizer->token_texts();
  const EvalInputs in = eval_inputs_for(c, texts);
  std::vector<EvalMetrics> rows;
  ProgressLine progress(true);
  for (size_t i = 0; i < dials.size(); ++i) {
    progress.update(fmt::format("eval [{}/{}] dial {:.2f}", i + 1, dials.size(), dials[i]));
    DialSchedule at;  // λ = dials[i] on every layer, times the profile
    at.value = {dials[i]};
    at.profile = profile;
    rows.push_back(evaluate(*c.model, set, at.at(0, c.cfg.model.n_layers, 0), &rules, in));
    rows.back().dial = dials[i];  // the row's λ, not the mean over the profile's layers
  }
  progress.finish();
  if (profile.kind != "uniform") described += ", dial profile " + profile.describe();
  std::cout << fmt::format("checkpoint {} (step {}{}), {} held-out windows of {} tokens{}\n", c.dir, c.meta.step,
                           c.llm == "main" ? "" : ", LLM " + c.llm, set.tokens.size(0), c.cfg.model.context, described)
            << sweep_table(rows) << std::endl;
  // Default: beside the checkpoints of the run (<run>/checkpoints/step-N -> <run>/eval-step-N).
  const std::string out =
      a.out_dir.empty()
          ? (fs::path(c.dir).parent_path().parent_path() / ("eval-step-" + std::to_string(c.meta.step))).string()
          : a.out_dir;
  for (const auto& f : sweep_write(rows, out)) std::cout << "wrote " << f << "\n";
  return kExitOk;
}

int run_generate(const GenerateArgs& a) {
  const std::string& prompt = a.prompt;
  const std::string& domain = a.domain;
  const std::vector<double> dial = dial_arg_parse(a.dial);
  if (dial.size() != 1) throw ConfigError("--dial: generate takes one dial value");
  const DialProfile profile = dial_profile_arg_parse(a.dial_profile);
  LoadedCheckpoint c = load_checkpoint(a.checkpoint, a.device);
  checkpoint_require_domain(c, domain);
  std::vector<uint32_t> ids;
  c.tokenizer->encode(prompt, ids);
  // A pool answers with the LLM asked for, the domain's owner, or the shortest code length.
  if (!a.llm.empty()) {
    c.select(a.llm);
  } else if (c.llm_names().size() > 1 && !domain.empty()) {
    c.select(c.cfg.pool.llms.at(c.cfg.pool.owner_at(domain, c.meta.step)).name);
    std::cout << "domain " << domain << " is owned by " << c.llm << "\n";
  } else if (c.llm_names().size() > 1) {
    c.select(route_prompt(c, ids, dial[0], a.rules_path));
  }
  const RuleSet rules = rules_for(c, a.rules_path, false, nullptr);
  if (domain.empty() && !c.domain_routes.empty()) {
    std::vector<std::string> names;
    for (const auto& r : c.domain_routes) names.push_back(r.domain);
    spdlog::info(
        "this model has blocks recruited for the domain(s) {}; the prompt has no domain, so the learned router "
        "routes it (pass --domain NAME to route it as training did)",
        fmt::join(names, ", "));
  }
  GenerateOptions o;
  DialSchedule at;
  at.value = {dial[0]};
  at.profile = profile;
  o.dial = at.at(0, c.cfg.model.n_layers, 0);
  o.temperature = a.temperature;
  o.top_k = a.top_k;
  o.max_tokens = a.max_tokens;
  o.seed = a.seed;
  o.rules = &rules;
  o.domain = domain;
  const auto texts = c.tokenizer->token_texts();
  const auto out = generate(*c.model, ids, o, texts, c.device);
  std::vector<uint32_t> gen_ids;
  gen_ids.reserve(out.size());
  for (const auto& g : out) gen_ids.push_back(g.id);
  std::cout << prompt << c.tokenizer->decode(gen_ids) << std::endl;
  if (a.show_attention) {
    std::vector<uint32_t> all = ids;
    all.insert(all.end(), gen_ids.begin(), gen_ids.end());
    std::cout << fmt::format("\n{:>5}  {:<8} {:>5}  top attended earlier positions (weight)\n", "pos", "token",
                             "block");
    for (size_t i = 0; i < out.size(); ++i) {
      std::string line = fmt::format("{:>5}  {:<8} {:>5} ", ids.size() + i,
                                     "\"" + text_preview(texts[out[i].id], 6) + "\"", out[i].block_slot);
      for (const auto& [pos, w] : out[i].attended) {
        line += fmt::format("  {}:\"{}\" ({:.2f})", pos, text_preview(texts[all[pos]], 6), w);
      }
      std::cout << line << "\n";
    }
  }
  return kExitOk;
}

int run_inspect(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": no such file or directory");
  if (fs::is_directory(path, ec)) {
    const std::string dir = checkpoint_resolve(path);
    const CheckpointContents c = checkpoint_read(dir, false);  // verifies every file's checksum
    const CheckpointMeta& m = c.meta;
    std::cout << fmt::format(
        "checkpoint {} (format version {})\n  written by      localist {}\n  step            {}\n"
        "  tokens seen     {}\n"
        "  vocabulary      {}\n  tokenizer       {} ({})\n  config          {}/config.yaml\n"
        "  state           {}\n",
        dir, c.format_version, m.written_by.empty() ? "(not recorded)" : m.written_by, m.step, m.tokens_seen,
        m.vocab_size, m.tokenizer_kind, m.tokenizer_spec, dir, c.state.dump());
    const bool pool = c.llms.size() > 1;
    if (pool) std::cout << fmt::format("  pool            {} LLMs\n", c.llms.size());
    for (const auto& l : c.llms) {
      const std::string in = pool ? "    " : "  ";
      if (pool) {
        const auto& i = l.info;
        std::string domains;
        for (const auto& d : i.value("domains", nlohmann::json::array()))
          domains += (domains.empty() ? "" : ",") + d.get<std::string>();
        std::cout << fmt::format(
            "  llm {}: parent {}, branched at step {}, domains {}, {} parameters, batch {}, "
            "ranks {}\n",
            l.name, i.value("parent", "").empty() ? "-" : i.value("parent", ""), i.value("branch_step", 0),
            domains.empty() ? "(the rest)" : domains, i.value("parameters", int64_t(0)),
            i.value("global_batch", int64_t(0)), i.value("ranks", nlohmann::json::array()).dump());
      }
      std::cout << fmt::format("{}block map       {}\n", in, l.map.describe());
      std::cout << in << "recruitment log" << (l.recruitment_log.empty() ? " empty\n" : "\n");
      std::istringstream log(l.recruitment_log);
      for (std::string line; std::getline(log, line);) std::cout << in << "  " << line << "\n";
    }
    if (c.state.contains("pool_log")) {  // the coordinator's spawn decisions (pool.recruit)
      std::cout << "  pool log\n";
      for (const auto& d : c.state.at("pool_log")) std::cout << "    " << d.dump() << "\n";
    }
    std::cout << "  files\n";
    for (const auto& [name, info] : c.files.items()) {
      std::cout << fmt::format("    {:<16} {:>12} bytes  sha256 {}  ok\n", name, info.at("bytes").get<int64_t>(),
                               info.at("sha256").get<std::string>().substr(0, 16));
    }
    return kExitOk;
  }
  ShardReader shard(path);
  const ShardMeta& m = shard.meta();
  std::cout << fmt::format(
      "token shard {}\n  format version  {}\n  source          {} ({})\n  source sha256   {}\n"
      "  source bytes    {}\n  domain          {}\n  tokenizer       {} (vocabulary {}, hash {})\n"
      "  tokenizer spec  {}\n  documents       {}\n  tokens          {}\n",
      path, m.format_version, m.source_name, m.source_path, m.source_sha256, m.source_bytes, m.domain, m.tokenizer_kind,
      m.vocab_size, m.tokenizer_hash.substr(0, 16), m.tokenizer_spec, m.document_count, m.token_count);
  const auto offsets = shard.document_offsets();
  if (offsets.size() >= 2) {
    const uint64_t n = std::min<uint64_t>(offsets[1] - offsets[0], 24);
    std::vector<uint32_t> head(n);
    shard.read(offsets[0], n, head.data());
    std::cout << "  first tokens    " << fmt::format("{}", fmt::join(head, " ")) << "\n";
    if (m.tokenizer_kind == "byte") {
      ByteTokenizer tok;
      std::cout << "  first text      \"" << text_preview(tok.decode(head), 80) << "\"\n";
    }
  }
  return kExitOk;
}

}  // namespace localist
