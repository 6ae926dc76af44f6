// SPDX-License-Identifier: Apache-2.0
// report_command.cpp: see report_command.h.
#include "launch/report_command.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "core/utf8.h"
#include "launch/dial_arg.h"
#include "launch/loaded_checkpoint.h"
#include "pool/pool_eval.h"
#include "pool/pool_routing.h"
#include "recruitment/recruiter.h"
#include "report/report.h"

namespace localist {
namespace {

// The text file's tokens cut into windows of context + 1 tokens (consecutive windows
// share one token, as the held-out windows do); a shorter rest is a group of its own.
std::vector<EvalSet> text_windows(const LoadedCheckpoint& c, const ReportArgs& a) {
  std::ifstream in(a.text_path, std::ios::binary);
  if (!in) throw ConfigError("--text " + a.text_path + ": cannot read the file");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (const auto bad = utf8_invalid_offset(text)) {
    throw ConfigError(
        fmt::format("--text {}: not UTF-8 text (invalid byte 0x{:02x} at offset {}); convert it first, "
                    "e.g. iconv -f latin1 -t utf-8",
                    a.text_path, static_cast<unsigned char>(text[*bad]), *bad));
  }
  std::vector<uint32_t> ids;
  c.tokenizer->encode(text, ids);
  const int64_t n = static_cast<int64_t>(ids.size()), ctx = c.cfg.model.context;
  if (n < 2) throw ConfigError("--text " + a.text_path + ": fewer than 2 tokens, nothing to show");
  if (n > a.max_tokens) {
    throw ConfigError(
        fmt::format("--text {}: {} tokens, more than the report's limit of {} (pass --max-tokens to "
                    "raise it, or cut the text)",
                    a.text_path, n, a.max_tokens));
  }
  std::vector<EvalSet> groups;
  std::vector<int64_t> full;
  int64_t rows = 0, start = 0;
  for (; start + ctx + 1 <= n; start += ctx, ++rows)
    full.insert(full.end(), ids.begin() + start, ids.begin() + start + ctx + 1);
  if (rows > 0) {
    EvalSet g;
    g.tokens = at::tensor(full, at::kLong).view({rows, ctx + 1});
    g.domains.assign(rows, a.domain);
    groups.push_back(std::move(g));
  }
  if (n - start >= 2) {
    EvalSet g;
    g.tokens = at::tensor(std::vector<int64_t>(ids.begin() + start, ids.end()), at::kLong).view({1, -1});
    g.domains = {a.domain};
    groups.push_back(std::move(g));
  }
  return groups;
}

RuleSet llm_rules(const LoadedCheckpoint& c, const std::string& path, const std::string& llm) {
  RuleSet r = path.empty() ? RuleSet() : RuleSet::load(path, c.cfg.model.k_max);
  return r.with_domain_routes(recruited_domain_routes(c.contents->llm(llm).recruitment, c.cfg.model.k_max));
}

std::string now_utc() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The report's dial per layer: the one given, else the checkpoint's own (its schedule
// at its step), else 0.
std::vector<double> report_dial(const LoadedCheckpoint& c, const ReportArgs& a) {
  std::vector<double> dial;
  if (!a.dial.empty()) {
    const auto d = dial_arg_parse(a.dial);
    if (d.size() != 1) throw ConfigError("--dial: the report takes one dial value (the sweep is --sweep)");
    dial.assign(c.cfg.model.n_layers, d[0]);
  } else {
    dial = checkpoint_trained_dial(c);
  }
  return dial;
}

// A pool: which LLM serves each window (spec.window_llm, spec.pool_routing).
void route_windows(const LoadedCheckpoint& c, const ReportArgs& a, const std::vector<std::string>& order,
                   const std::vector<std::shared_ptr<LocalistModel>>& models, const std::vector<EvalSet>& windows,
                   int64_t n_windows, ReportSpec& spec) {
  // Which LLM serves each window: the owner of --domain, else the shortest code length
  // of its first route_prefix tokens (scored untagged, as a prompt would be).
  nlohmann::json routing = {{"llms", order}, {"prefix", a.route_prefix}};
  std::vector<std::vector<double>> prefix_bits(n_windows, std::vector<double>(order.size()));
  const RuleSet plain = a.rules_path.empty() ? RuleSet() : RuleSet::load(a.rules_path, c.cfg.model.k_max);
  for (size_t i = 0; i < order.size(); ++i) {
    int64_t w = 0;
    for (const auto& g : windows) {
      EvalSet untagged = g;
      untagged.domains.assign(g.domains.size(), "");
      const auto bits = pool_window_bits(*models[i], untagged, &plain, spec.dial, spec.inputs);  // (N, T)
      const auto prefix = bits.narrow(1, 0, std::min<int64_t>(a.route_prefix, bits.size(1))).sum(1).contiguous();
      for (int64_t r = 0; r < prefix.size(0); ++r) prefix_bits[w++][i] = prefix[r].item<double>();
    }
  }
  int owner = -1;
  if (!a.domain.empty()) {
    const std::string& o = c.cfg.pool.llms.at(c.cfg.pool.owner_at(a.domain, c.meta.step)).name;
    owner = static_cast<int>(std::find(order.begin(), order.end(), o) - order.begin());
  }
  routing["rule"] =
      owner >= 0 ? fmt::format(
                       "Every window has the domain {}, owned by {}: it serves them all (the code lengths are shown "
                       "for comparison).",
                       a.domain, order[owner])
                 : fmt::format(
                       "Each window goes to the LLM with the shortest code length of its first {} tokens, scored "
                       "without a domain tag (DESIGN.md M11, step 6).",
                       a.route_prefix);
  nlohmann::json rows = nlohmann::json::array();
  int64_t w = 0;
  for (const auto& g : windows) {
    for (int64_t r = 0; r < g.tokens.size(0); ++r, ++w) {
      const auto& pb = prefix_bits[w];
      const int best = static_cast<int>(std::min_element(pb.begin(), pb.end()) - pb.begin());
      const int served = owner >= 0 ? owner : best;
      spec.window_llm.push_back(served);
      rows.push_back({{"window", w},
                      {"domain", g.domains[r]},
                      {"llm", order[served]},
                      {"reason", owner >= 0 ? "domain " + a.domain : "shortest code length"},
                      {"prefix_bits", pb}});
    }
  }
  routing["windows"] = std::move(rows);
  spec.pool_routing = std::move(routing);
}

}  // namespace

int run_report(const ReportArgs& a) {
  if (a.out_dir.empty()) throw ConfigError("--out: the report needs a directory to write to");
  if (!a.text_path.empty() && a.windows > 0) throw ConfigError("--text and --windows: give one of them");
  const std::vector<double> sweep = dial_arg_parse(a.sweep);
  LoadedCheckpoint c = load_checkpoint(a.checkpoint, a.device);  // verifies every file's checksum
  checkpoint_require_domain(c, a.domain);
  const std::vector<std::string> names = c.llm_names();
  const std::string shown = a.llm.empty() ? "main" : a.llm;
  c.contents->llm(shown);  // an unknown --llm: one line naming the pool's LLMs

  const std::vector<double> dial = report_dial(c, a);

  std::vector<EvalSet> windows;
  std::string windows_from;
  if (!a.text_path.empty()) {
    windows = text_windows(c, a);
    windows_from = "text " + a.text_path + (a.domain.empty() ? "" : ", domain " + a.domain);
  } else {
    const int64_t per = a.windows > 0 ? a.windows : c.cfg.train.eval_windows;
    windows.push_back(eval_set_load(c.cfg.data, c.cfg.model.context, per));
    if (!a.domain.empty()) windows.back().domains.assign(windows.back().domains.size(), a.domain);
    windows_from = fmt::format("held-out windows, up to {} per held-out source", per);
  }
  int64_t n_windows = 0;
  for (const auto& g : windows) n_windows += g.tokens.size(0);
  if (!a.rules_path.empty()) RuleSet::load(a.rules_path, c.cfg.model.k_max);  // a bad file: before any pass

  const auto texts = c.tokenizer->token_texts();
  // Every LLM that may serve a window, the shown one first.
  std::vector<std::string> order = {shown};
  const bool pool = names.size() > 1 && a.llm.empty();
  if (pool) {
    for (const auto& n : names) {
      if (n != shown) order.push_back(n);
    }
  }
  std::vector<std::shared_ptr<LocalistModel>> models;
  std::vector<RuleSet> rules;
  for (const auto& n : order) {
    c.select(n);
    models.push_back(c.model);
    rules.push_back(llm_rules(c, a.rules_path, n));
  }
  ReportSpec spec;
  spec.contents = c.contents.get();
  for (size_t i = 0; i < order.size(); ++i) spec.llms.push_back({order[i], models[i].get(), &rules[i]});
  spec.windows = windows;
  spec.windows_from = windows_from;
  spec.dial = dial;
  spec.sweep = sweep;
  spec.inputs = eval_inputs_for(c, texts);
  spec.view.fidelity_threshold = a.fidelity_threshold;
  spec.rules_file = a.rules_path;
  spec.command = {{"line", a.command}, {"time", now_utc()}};

  if (pool) route_windows(c, a, order, models, windows, n_windows, spec);
  const nlohmann::json report = report_build(spec);
  for (const auto& f : report_write(report, a.out_dir)) std::cout << "wrote " << f << "\n";
  return kExitOk;
}

}  // namespace localist
