// SPDX-License-Identifier: Apache-2.0
// evaluate.cpp: see evaluate.h.
#include "trainer/evaluate.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/file_util.h"
#include "data/prepare.h"
#include "data/token_shard.h"
#include "model/forward_pass.h"
#include "trainer/metric_fields.h"

namespace localist {

EvalSet eval_set_load(const DataConfig& data, int64_t context, int64_t per_source) {
  EvalSet set;
  std::vector<int64_t> all;
  int64_t rows = 0;
  for (const auto& s : data.sources) {
    if (s.train) continue;
    ShardReader shard(shard_path(data, s));
    const int64_t n = std::min<int64_t>(per_source, (shard.meta().token_count - 1) / context);
    std::vector<uint32_t> buf(context + 1);
    for (int64_t w = 0; w < n; ++w) {
      shard.read(static_cast<uint64_t>(w * context), context + 1, buf.data());
      all.insert(all.end(), buf.begin(), buf.end());
      set.domains.push_back(s.domain);
      ++rows;
    }
  }
  if (rows == 0) {
    throw ConfigError(
        "data.sources: evaluation needs a held-out source (train: false) with at least model.context + 1 "
        "tokens");
  }
  set.tokens = at::tensor(all, at::kLong).view({rows, context + 1});
  return set;
}

void evaluate_into(MetricsAccumulator& acc, LocalistModel& model, const EvalSet& set, const std::vector<double>& dial,
                   const RuleSet* rules, const EvalInputs& in, const EvalObserver& observe) {
  at::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const int64_t n = set.tokens.size(0);
  for (int64_t b = 0; b < n; b += in.batch) {
    const int64_t rows = std::min(in.batch, n - b);
    const auto window = set.tokens.narrow(0, b, rows);
    const auto inputs = window.narrow(1, 0, window.size(1) - 1);
    const auto targets = window.narrow(1, 1, window.size(1) - 1);
    PassSpec spec;
    spec.rules = rules;
    spec.token_texts = in.token_texts;
    spec.device = in.device;
    ForwardOptions opt;
    opt.dial = dial;
    opt.trace = true;
    const std::vector<std::string> doms(set.domains.begin() + b, set.domains.begin() + b + rows);
    const ForwardResult r = forward_with_rules(model, inputs, targets, doms, opt, spec, PassLoss::kNone).result;
    acc.add(r, targets, in.pad_id);
    if (observe) observe(r, b, rows);
  }
  model.train(was_training);
}

EvalMetrics evaluate(LocalistModel& model, const EvalSet& set, const std::vector<double>& dial, const RuleSet* rules,
                     const EvalInputs& in, const EvalObserver& observe) {
  MetricsAccumulator acc(model.config(), in.token_bytes, in.epsilon0);
  evaluate_into(acc, model, set, dial, rules, in, observe);
  return acc.finish();
}

nlohmann::json eval_metrics_json(const EvalMetrics& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& f : metric_fields()) {
    if (f.name) j[f.name] = f.value(m);
  }
  return j;
}

namespace {

std::string csv_value(const nlohmann::json& v) {
  return v.is_number_integer() ? fmt::format("{}", v.get<int64_t>()) : fmt::format("{}", v.get<double>());
}

}  // namespace

std::string sweep_table(const std::vector<EvalMetrics>& rows) {
  std::string s;
  for (const auto& f : metric_fields()) {
    if (f.label) s += fmt::format("{}{:>{}}", s.empty() ? "" : " ", f.label, f.width);
  }
  s += "\n";
  for (const auto& m : rows) {
    std::string line;
    for (const auto& f : metric_fields()) {
      if (!f.label) continue;
      const std::string cell =
          f.absent && f.absent(m) ? std::string("-") : fmt::format("{:.{}f}", f.value(m).get<double>(), f.precision);
      line += fmt::format("{}{:>{}}", line.empty() ? "" : " ", cell, f.width);
    }
    s += line + "\n";
  }
  s +=
      "H_attn: gate-weighted attention entropy (bits); H_unw: unweighted; H_rt: routing entropy; share: largest block "
      "share; fid/top1: own-block pointer fidelity; rule: point-rule fidelity; bounds: smallest fraction of queries on "
      "which an M8 bound holds";
  return s;
}

std::vector<std::string> sweep_write(const std::vector<EvalMetrics>& rows, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the output directory: " + ec.message());
  std::string csv;
  for (const auto& f : metric_fields()) {
    if (f.csv) csv += std::string(csv.empty() ? "" : ",") + f.name;
  }
  csv += "\n";
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& m : rows) {
    std::string line;
    for (const auto& f : metric_fields()) {
      if (f.csv) line += (line.empty() ? "" : ",") + csv_value(f.value(m));
    }
    csv += line + "\n";
    arr.push_back(eval_metrics_json(m));
  }
  const std::string csv_path = (fs::path(dir) / "sweep.csv").string();
  const std::string json_path = (fs::path(dir) / "sweep.json").string();
  write_file_atomic(csv_path, csv);
  write_file_atomic(json_path, arr.dump(2) + "\n");
  std::vector<std::string> written{csv_path, json_path};
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    const std::string png = (fs::path(dir) / "sweep.png").string();
    const std::string script = (fs::path(dir) / "sweep.gnuplot").string();
    write_file_atomic(
        script,
        fmt::format(
            "set terminal pngcairo size 900,600\nset output '{}'\nset datafile separator ','\nset key top center\n"
            "set xlabel 'locality dial lambda'\nset ylabel 'bits / fidelity'\nset y2label 'perplexity'\nset ytics "
            "nomirror\n"
            "set y2tics\nplot '{}' skip 1 using {}:{} with linespoints title 'attention entropy (bits)', "
            "'' skip 1 using {}:{} with linespoints title 'own-block fidelity', "
            "'' skip 1 using {}:{} axes x1y2 with linespoints title 'perplexity'\n",
            png, csv_path, metric_csv_column("dial"), metric_csv_column("attn_entropy_bits"), metric_csv_column("dial"),
            metric_csv_column("own_fidelity_mass"), metric_csv_column("dial"), metric_csv_column("perplexity")));
    if (std::system(("gnuplot '" + script + "' 2>/dev/null").c_str()) == 0) {
      written.push_back(png);
    } else {
      spdlog::warn("gnuplot failed; {} and {} are written without the plot", csv_path, json_path);
    }
  } else {
    spdlog::warn("gnuplot is not installed: no sweep.png (apt-get install gnuplot-nox)");
  }
  return written;
}

}  // namespace localist
