// SPDX-License-Identifier: Apache-2.0
// pool_eval.cpp: see pool_eval.h.
#include "pool/pool_eval.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/file_util.h"
#include "model/forward_pass.h"
#include "pool/pool_routing.h"

namespace localist {

at::Tensor pool_window_bits(LocalistModel& model, const EvalSet& set, const RuleSet* rules,
                            const std::vector<double>& dial, const EvalInputs& in) {
  at::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const int64_t n = set.tokens.size(0), T = set.tokens.size(1) - 1;
  std::vector<at::Tensor> parts;
  for (int64_t b = 0; b < n; b += in.batch) {
    const int64_t rows = std::min(in.batch, n - b);
    const auto window = set.tokens.narrow(0, b, rows);
    PassSpec spec;
    spec.rules = rules;
    spec.token_texts = in.token_texts;
    spec.device = in.device;
    spec.pad_id = in.pad_id;
    ForwardOptions opt;
    opt.dial = dial;
    const ForwardPass f = forward_with_rules(model, window.narrow(1, 0, T), window.narrow(1, 1, T),
                                             std::vector<std::string>(rows), opt, spec, PassLoss::kPerToken);
    parts.push_back((f.ce.to(at::kDouble) / std::log(2.0)).view({rows, T}).cpu());
  }
  model.train(was_training);
  return at::cat(parts, 0);
}

PoolEvalResult pool_evaluate(const EvalSet& set, const PoolEvalSpec& spec) {
  const int64_t L = static_cast<int64_t>(spec.llms.size()), N = set.tokens.size(0), T = set.tokens.size(1) - 1;
  if (L < 1 || static_cast<int64_t>(spec.owner.size()) != N) throw Error("pool eval: one owner per window needed");
  std::vector<at::Tensor> per;
  for (const auto& l : spec.llms) per.push_back(pool_window_bits(*l.model, set, l.rules, spec.dial, spec.inputs));
  const auto bits = at::stack(per, 0);  // (L, N, T)
  const auto cl = bits.sum(2);          // (L, N)
  const auto tag = at::tensor(std::vector<int64_t>(spec.owner.begin(), spec.owner.end()), at::kLong);
  const auto routed = route_argmin(bits, spec.route_prefix);
  const auto mixture = route_mixture_bits(bits, spec.priors).sum(1);  // (N)
  const auto oracle = std::get<0>(cl.min(0));
  // Columns of per-window code lengths: each LLM, tag, argmin, mixture, oracle.
  std::vector<at::Tensor> cols;
  PoolEvalResult r;
  for (int64_t l = 0; l < L; ++l) cols.push_back(cl[l]), r.columns.push_back(spec.llms[l].name);
  cols.push_back(route_bits_of(bits, tag)), r.columns.push_back("tag");
  cols.push_back(route_bits_of(bits, routed)), r.columns.push_back(fmt::format("argmin@{}", spec.route_prefix));
  cols.push_back(mixture), r.columns.push_back("mixture");
  cols.push_back(oracle), r.columns.push_back("oracle");
  // The bound: mixture <= min_l (CL_l + log2 1/prior_l) on every window.
  double total = 0;
  for (double p : spec.priors) total += p;
  at::Tensor best = at::full({N}, 1e300, at::kDouble);
  for (int64_t l = 0; l < L; ++l) best = at::minimum(best, cl[l] + std::log2(total / spec.priors[l]));
  r.mixture_bound_slack = (best - mixture).min().item<double>();
  for (int64_t m : spec.agreement_prefixes) {
    const int64_t p = m <= 0 || m > T ? T : m;
    if (std::find(r.prefixes.begin(), r.prefixes.end(), p) == r.prefixes.end()) r.prefixes.push_back(p);
  }
  for (const auto& d : set.domains) {
    if (std::find(r.domains.begin(), r.domains.end(), d) == r.domains.end()) r.domains.push_back(d);
  }
  r.domains.push_back("all");
  for (const auto& d : r.domains) {
    std::vector<int64_t> rows;
    for (int64_t n = 0; n < N; ++n) {
      if (d == "all" || set.domains[n] == d) rows.push_back(n);
    }
    const auto idx = at::tensor(rows, at::kLong);
    std::vector<double> row;
    for (const auto& c : cols) row.push_back(c.index_select(0, idx).sum().item<double>() / (rows.size() * T));
    r.bits.push_back(row);
    r.windows.push_back(static_cast<int64_t>(rows.size()));
    std::vector<double> agree;
    for (int64_t m : r.prefixes) {
      const auto choice = route_argmin(bits.index_select(1, idx), m);
      agree.push_back(choice.eq(tag.index_select(0, idx)).to(at::kDouble).mean().item<double>());
    }
    r.agreement.push_back(agree);
  }
  return r;
}

nlohmann::json PoolEvalResult::to_json() const {
  nlohmann::json j = {{"columns", columns}, {"prefixes", prefixes}, {"mixture_bound_slack_bits", mixture_bound_slack}};
  j["domains"] = nlohmann::json::array();
  for (size_t d = 0; d < domains.size(); ++d) {
    nlohmann::json row = {{"domain", domains[d]}, {"windows", windows[d]}};
    for (size_t c = 0; c < columns.size(); ++c) row["bits_per_token"][columns[c]] = bits[d][c];
    for (size_t p = 0; p < prefixes.size(); ++p)
      row["argmin_agrees_with_tag"][std::to_string(prefixes[p])] = agreement[d][p];
    j["domains"].push_back(row);
  }
  return j;
}

std::string pool_eval_table(const PoolEvalResult& r) {
  std::string s = fmt::format("{:<12} {:>7}", "domain", "windows");
  for (const auto& c : r.columns) s += fmt::format(" {:>10}", c);
  s += "   (bits per token)\n";
  for (size_t d = 0; d < r.domains.size(); ++d) {
    s += fmt::format("{:<12} {:>7}", r.domains[d], r.windows[d]);
    for (double b : r.bits[d]) s += fmt::format(" {:>10.4f}", b);
    s += "\n";
  }
  s += fmt::format("\nargmin routing agrees with the tag (share of windows), by prefix length m:\n{:<12}", "domain");
  for (int64_t m : r.prefixes) s += fmt::format(" {:>8}", fmt::format("m={}", m));
  s += "\n";
  for (size_t d = 0; d < r.domains.size(); ++d) {
    s += fmt::format("{:<12}", r.domains[d]);
    for (double a : r.agreement[d]) s += fmt::format(" {:>8.3f}", a);
    s += "\n";
  }
  s += fmt::format(
      "mixture bound (mixture <= min over LLMs of bits + log2 1/prior, every window): {} (slack {:.3g} "
      "bits)\n",
      r.mixture_bound_slack >= -1e-6 ? "holds" : "VIOLATED", r.mixture_bound_slack);
  return s;
}

std::vector<std::string> pool_eval_write(const PoolEvalResult& r, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the evaluation directory: " + ec.message());
  std::string csv = "domain,windows,model,bits_per_token\n";
  for (size_t d = 0; d < r.domains.size(); ++d) {
    for (size_t c = 0; c < r.columns.size(); ++c) {
      csv += fmt::format("{},{},{},{}\n", r.domains[d], r.windows[d], r.columns[c], r.bits[d][c]);
    }
  }
  const std::string csv_path = (std::filesystem::path(dir) / "pool.csv").string();
  const std::string json_path = (std::filesystem::path(dir) / "pool.json").string();
  write_file_atomic(csv_path, csv);
  write_file_atomic(json_path, r.to_json().dump(2) + "\n");
  return {csv_path, json_path};
}

}  // namespace localist
