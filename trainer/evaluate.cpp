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
    throw ConfigError("data.sources: evaluation needs a held-out source (train: false) with at least model.context + 1 "
                      "tokens");
  }
  set.tokens = at::tensor(all, at::kLong).view({rows, context + 1});
  return set;
}

EvalMetrics evaluate(LocalistModel& model, const EvalSet& set, const std::vector<double>& dial, const RuleSet* rules,
                     const EvalInputs& in) {
  at::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  MetricsAccumulator acc(model.config(), in.token_bytes, in.epsilon0);
  const int64_t n = set.tokens.size(0);
  for (int64_t b = 0; b < n; b += in.batch) {
    const int64_t rows = std::min(in.batch, n - b);
    const auto window = set.tokens.narrow(0, b, rows);
    const auto inputs = window.narrow(1, 0, window.size(1) - 1);
    const auto targets = window.narrow(1, 1, window.size(1) - 1);
    RuleMasks masks;
    if (rules && !rules->empty()) {
      std::vector<std::string> doms(set.domains.begin() + b, set.domains.begin() + b + rows);
      masks = rules->masks(inputs, doms, *in.token_texts, in.device);
    }
    ForwardOptions opt;
    opt.dial = dial;
    opt.rules = (rules && !rules->empty()) ? &masks : nullptr;
    opt.trace = true;
    const ForwardResult r = model.forward(inputs.to(in.device), opt);
    acc.add(r, targets, in.pad_id);
  }
  model.train(was_training);
  return acc.finish();
}

nlohmann::json eval_metrics_json(const EvalMetrics& m) {
  return {{"dial", m.dial},
          {"tokens", m.tokens},
          {"bytes", m.bytes},
          {"ce_nats", m.ce_nats},
          {"bits_per_token", m.bits_per_token},
          {"bits_per_byte", m.bits_per_byte},
          {"perplexity", m.perplexity},
          {"accuracy", m.accuracy},
          {"code_length_bits", m.code_length_bits},
          {"attn_entropy_bits", m.attn_entropy},
          {"attn_entropy_unweighted_bits", m.attn_entropy_unweighted},
          {"attn_entropy_per_layer_bits", m.attn_entropy_per_layer},
          {"routing_entropy_bits", m.routing_entropy},
          {"mutual_info_bits", m.mutual_info},
          {"block_share", m.block_share},
          {"block_share_by_layer", m.block_share_by_layer},
          {"max_block_share", m.max_share},
          {"own_fidelity_mass", m.own_fidelity_mass},
          {"own_fidelity_top1", m.own_fidelity_top1},
          {"own_pairs", m.own_pairs},
          {"rule_fidelity_mass", m.rule_fidelity_mass},
          {"rule_fidelity_top1", m.rule_fidelity_top1},
          {"rule_pairs", m.rule_pairs},
          {"epsilon_mean", m.epsilon_mean},
          {"delta_mean", m.delta_mean},
          {"s_max", m.s_max},
          {"lambda_star_median", m.lambda_star_median},
          {"bound_queries", m.bound_queries},
          {"bound_epsilon_holds", m.bound_epsilon_holds},
          {"bound_entropy_holds", m.bound_entropy_holds},
          {"bound_delta_holds", m.bound_delta_holds}};
}

std::string sweep_table(const std::vector<EvalMetrics>& rows) {
  std::string s = fmt::format("{:>5} {:>7} {:>7} {:>6} {:>6} {:>6} {:>7} {:>6} {:>6} {:>7} {:>6} {:>6} {:>7} {:>7} {:>6}\n",
                              "dial", "H_attn", "H_unw", "H_rt", "I_pi", "share", "fid", "top1", "rule", "ppl", "acc",
                              "bpb", "eps", "lam*", "bounds");
  for (const auto& m : rows) {
    const double bounds = std::min({m.bound_epsilon_holds, m.bound_entropy_holds, m.bound_delta_holds});
    s += fmt::format("{:>5.2f} {:>7.3f} {:>7.3f} {:>6.3f} {:>6.3f} {:>6.3f} {:>7.4f} {:>6.3f} {:>6} {:>7.3f} {:>6.3f} "
                     "{:>6.3f} {:>7.4f} {:>7.3f} {:>6.4f}\n",
                     m.dial, m.attn_entropy, m.attn_entropy_unweighted, m.routing_entropy, m.mutual_info, m.max_share,
                     m.own_fidelity_mass, m.own_fidelity_top1,
                     m.rule_pairs > 0 ? fmt::format("{:.3f}", m.rule_fidelity_mass) : std::string("-"), m.perplexity,
                     m.accuracy, m.bits_per_byte, m.epsilon_mean, m.lambda_star_median, bounds);
  }
  s += "H_attn: gate-weighted attention entropy (bits); H_unw: unweighted; H_rt: routing entropy; share: largest block "
       "share; fid/top1: own-block pointer fidelity; rule: point-rule fidelity; bounds: smallest fraction of queries on "
       "which an M8 bound holds";
  return s;
}

std::vector<std::string> sweep_write(const std::vector<EvalMetrics>& rows, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the output directory: " + ec.message());
  std::string csv =
      "dial,attn_entropy_bits,attn_entropy_unweighted_bits,routing_entropy_bits,mutual_info_bits,max_block_share,"
      "own_fidelity_mass,own_fidelity_top1,rule_fidelity_mass,rule_fidelity_top1,perplexity,accuracy,ce_nats,"
      "bits_per_token,bits_per_byte,epsilon_mean,delta_mean,s_max,lambda_star_median,bound_epsilon_holds,"
      "bound_entropy_holds,bound_delta_holds,tokens\n";
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& m : rows) {
    csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", m.dial, m.attn_entropy,
                       m.attn_entropy_unweighted, m.routing_entropy, m.mutual_info, m.max_share, m.own_fidelity_mass,
                       m.own_fidelity_top1, m.rule_fidelity_mass, m.rule_fidelity_top1, m.perplexity, m.accuracy,
                       m.ce_nats, m.bits_per_token, m.bits_per_byte, m.epsilon_mean, m.delta_mean, m.s_max,
                       m.lambda_star_median, m.bound_epsilon_holds, m.bound_entropy_holds, m.bound_delta_holds, m.tokens);
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
    write_file_atomic(script, fmt::format(
        "set terminal pngcairo size 900,600\nset output '{}'\nset datafile separator ','\nset key top center\n"
        "set xlabel 'locality dial lambda'\nset ylabel 'bits / fidelity'\nset y2label 'perplexity'\nset ytics nomirror\n"
        "set y2tics\nplot '{}' skip 1 using 1:2 with linespoints title 'attention entropy (bits)', "
        "'' skip 1 using 1:7 with linespoints title 'own-block fidelity', "
        "'' skip 1 using 1:11 axes x1y2 with linespoints title 'perplexity'\n",
        png, csv_path));
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
