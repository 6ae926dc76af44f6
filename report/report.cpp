// SPDX-License-Identifier: Apache-2.0
// report.cpp: see report.h. One traced pass per window at the report's dial feeds the
// metrics, the bounds and the token view together; the sweep adds one pass per value.
#include "report/report.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "core/file_util.h"
#include "report/model_card.h"
#include "report/report_page.h"

namespace localist {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

nlohmann::json histogram_json(const std::vector<int64_t>& counts, double lo, double hi) {
  nlohmann::json edges = nlohmann::json::array();
  const size_t n = counts.size();
  for (size_t i = 0; i <= n; ++i) edges.push_back(lo + (hi - lo) * double(i) / double(n));
  return {{"edges", std::move(edges)}, {"counts", counts}};
}

// The windows of `groups` that `keep` selects, in groups of the same lengths, and the
// report's index of each row.
struct Subset {
  std::vector<EvalSet> groups;
  std::vector<std::vector<int64_t>> index;
};
Subset subset_of(const std::vector<EvalSet>& groups, const std::vector<bool>& keep) {
  Subset s;
  int64_t w = 0;
  for (const EvalSet& g : groups) {
    std::vector<int64_t> rows, idx;
    for (int64_t r = 0; r < g.tokens.size(0); ++r, ++w) {
      if (keep[w]) rows.push_back(r), idx.push_back(w);
    }
    if (rows.empty()) continue;
    EvalSet e;
    e.tokens = g.tokens.index_select(0, at::tensor(rows, at::kLong));
    for (int64_t r : rows) e.domains.push_back(g.domains[r]);
    s.groups.push_back(std::move(e));
    s.index.push_back(std::move(idx));
  }
  return s;
}

// One traced pass over the subset at the dial into `acc` and `view`.
void pass(const Subset& s, const ReportLlm& llm, const std::vector<double>& dial, const EvalInputs& in,
          MetricsAccumulator& acc, TokenView* view) {
  for (size_t g = 0; g < s.groups.size(); ++g) {
    const EvalSet& set = s.groups[g];
    EvalObserver observe;
    if (view) {
      observe = [&](const ForwardResult& r, int64_t first, int64_t rows) {
        const auto w = set.tokens.narrow(0, first, rows);
        const std::vector<std::string> doms(set.domains.begin() + first, set.domains.begin() + first + rows);
        const std::vector<int64_t> index(s.index[g].begin() + first, s.index[g].begin() + first + rows);
        view->add(r, w.narrow(1, 0, w.size(1) - 1), w.narrow(1, 1, w.size(1) - 1), doms, index);
      };
    }
    evaluate_into(acc, *llm.model, set, dial, llm.rules, in, observe);
  }
}

}  // namespace

std::string report_json_text(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

// A pool: the token view of the windows LLM `l` served, from its own pass (empty when
// it served none).
nlohmann::json served_windows_json(const ReportSpec& spec, const std::vector<int>& served, size_t l) {
  const int64_t n_windows = static_cast<int64_t>(served.size());
  std::vector<bool> keep(n_windows);
  std::vector<int64_t> mine;
  for (int64_t w = 0; w < n_windows; ++w) {
    keep[w] = served[w] == static_cast<int>(l);
    if (keep[w]) mine.push_back(w);
  }
  if (mine.empty()) return nlohmann::json::array();
  MetricsAccumulator other(spec.llms[l].model->config(), spec.inputs.token_bytes, spec.inputs.epsilon0);
  TokenView v(spec.llms[l].rules, *spec.inputs.token_texts, spec.view);
  pass(subset_of(spec.windows, keep), spec.llms[l], spec.dial, spec.inputs, other, &v);
  return v.windows_json(spec.llms[l].name);
}

// M8's bound checks over every query of the pass, and their histograms.
nlohmann::json bounds_json(const EvalMetrics& m, double epsilon0) {
  return {{"queries", m.bound_queries},
          {"epsilon_holds", m.bound_epsilon_holds},
          {"entropy_holds", m.bound_entropy_holds},
          {"delta_holds", m.bound_delta_holds},
          {"epsilon0", epsilon0},
          {"epsilon_histogram", histogram_json(m.epsilon_histogram, 0, 1)},
          {"lambda_star_histogram", histogram_json(m.lambda_star_histogram, 0, 1)},
          {"lambda_star_below", m.lambda_star_below},
          {"lambda_star_above", m.lambda_star_above},
          {"lambda_star_median", m.lambda_star_median},
          {"s_max", m.s_max}};
}

// The main LLM's metrics at every dial value of the sweep, one pass each.
nlohmann::json sweep_json(const ReportSpec& spec, const Subset& all) {
  const ReportLlm& main = spec.llms[0];
  nlohmann::json sweep = nlohmann::json::array();
  for (double d : spec.sweep) {
    MetricsAccumulator a(main.model->config(), spec.inputs.token_bytes, spec.inputs.epsilon0);
    pass(all, main, std::vector<double>(main.model->config().n_layers, d), spec.inputs, a, nullptr);
    sweep.push_back(eval_metrics_json(a.finish()));
  }
  return sweep;
}

}  // namespace

nlohmann::json report_build(const ReportSpec& spec) {
  const auto t0 = Clock::now();
  if (spec.llms.empty() || !spec.contents) throw Error("report: nothing to report on");
  const ReportLlm& main = spec.llms[0];
  const CheckpointContents& c = *spec.contents;
  int64_t n_windows = 0;
  for (const auto& g : spec.windows) n_windows += g.tokens.size(0);
  std::vector<int> served = spec.window_llm;
  if (served.empty()) served.assign(n_windows, 0);

  nlohmann::json report;
  report["schema"] = "localist-report";
  report["schema_version"] = 1;
  report["command"] = spec.command;
  report["card"] = report_model_card(c, main.name, *main.model);
  report["curves"] = report_training_curves(report_metrics_path(c.dir), c.meta.step);

  // The report's dial: metrics, bounds, blocks, rules and the token view from one pass.
  const auto t_view = Clock::now();
  const Subset all = subset_of(spec.windows, std::vector<bool>(n_windows, true));
  MetricsAccumulator acc(main.model->config(), spec.inputs.token_bytes, spec.inputs.epsilon0);
  TokenView view(main.rules, *spec.inputs.token_texts, spec.view);
  pass(all, main, spec.dial, spec.inputs, acc, &view);
  const EvalMetrics m = acc.finish();
  nlohmann::json windows = nlohmann::json::array();
  std::vector<int64_t> own;
  for (int64_t w = 0; w < n_windows; ++w) {
    if (served[w] == 0) own.push_back(w);
  }
  std::vector<nlohmann::json> by_window(n_windows);
  // (The index is read first: json's operator= takes its argument by value, moved from j.)
  auto place = [&](nlohmann::json list) {
    for (auto& j : list) {
      const int64_t w = j.at("index").get<int64_t>();
      by_window[w] = std::move(j);
    }
  };
  place(view.windows_json(main.name, &own));
  for (size_t l = 1; l < spec.llms.size(); ++l) place(served_windows_json(spec, served, l));
  for (auto& j : by_window) windows.push_back(std::move(j));
  const double view_s = seconds_since(t_view);

  double dial_mean = 0;
  for (double d : spec.dial) dial_mean += d / static_cast<double>(spec.dial.size());
  report["evaluation"] = {{"dial", dial_mean},
                          {"dial_per_layer", spec.dial},
                          {"windows", n_windows},
                          {"windows_from", spec.windows_from},
                          {"llm", main.name},
                          {"metrics", eval_metrics_json(m)},
                          {"attn_entropy_per_layer", m.attn_entropy_per_layer},
                          {"own_fidelity_per_layer", m.own_fidelity_per_layer},
                          {"block_share_by_layer", m.block_share_by_layer}};
  report["bounds"] = bounds_json(m, spec.inputs.epsilon0);
  // Blocks: the card's origin and decision beside what the pass saw.
  nlohmann::json blocks = view.blocks_json(main.model->anchor_code());
  for (auto& b : blocks) {
    for (const auto& cb : report["card"]["blocks"]) {
      if (cb.at("slot") == b.at("slot")) b.update(cb);
    }
  }
  report["blocks"] = std::move(blocks);
  report["rules"] = {{"file", spec.rules_file},
                     {"fidelity_threshold", spec.view.fidelity_threshold},
                     {"rule_fidelity_mass", m.rule_fidelity_mass},
                     {"rule_fidelity_top1", m.rule_fidelity_top1},
                     {"rule_pairs", m.rule_pairs},
                     {"rules", view.rules_json()}};
  nlohmann::json names = nlohmann::json::array();
  if (main.rules) {
    for (const auto& r : main.rules->rules()) names.push_back(r.name);
  }
  report["token_view"] = {{"layers", main.model->config().n_layers}, {"active_slots", view.active_slots()},
                          {"head_blocks", view.head_blocks()},       {"k_max", main.model->config().k_max},
                          {"rule_names", std::move(names)},          {"windows", std::move(windows)}};

  const auto t_sweep = Clock::now();
  report["sweep"] = sweep_json(spec, all);
  if (!spec.pool_routing.is_null()) report["pool_routing"] = spec.pool_routing;
  report["timing"] = {{"token_view_s", view_s}, {"sweep_s", seconds_since(t_sweep)}, {"total_s", seconds_since(t0)}};
  return report;
}

std::vector<std::string> report_write(const nlohmann::json& report, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the report directory: " + ec.message());
  // Both texts are made before either file is written: a failure leaves no new file.
  const std::string json = report_json_text(report, -1);
  const std::string html = report_page_html(report);
  const std::string json_path = (fs::path(dir) / "report.json").string();
  const std::string html_path = (fs::path(dir) / "report.html").string();
  write_file_atomic(json_path, json + "\n");
  write_file_atomic(html_path, html);
  return {html_path, json_path};
}

}  // namespace localist
