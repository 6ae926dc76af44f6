// SPDX-License-Identifier: Apache-2.0
// plan_command.cpp: see plan_command.h.
#include "launch/plan_command.h"

#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <regex>

#include "core/error.h"
#include "data/prepare.h"
#include "data/tokenizer.h"
#include "launch/run_config.h"
#include "pool/pool_spawn.h"
#include "run/job_plan.h"

namespace localist {
namespace {

// The device's memory per rank and the stated bandwidths (GB/s within a node, between
// nodes): NVLink 4 (450 per direction) and 400 Gb/s InfiniBand for H100/H200; shared
// memory and 100 Gb/s for CPU ranks. --intra-gbps / --inter-gbps replace them.
void apply_device(const PlanArgs& a, PlanInput& in) {
  constexpr double GiB = 1024.0 * 1024.0 * 1024.0;
  in.cuda = a.device != "cpu";
  in.intra_gbps = in.cuda ? 450 : 10, in.inter_gbps = in.cuda ? 50 : 12.5;
  if (a.device == "h100") {
    in.memory = 79 * GiB;  // what a process can allocate of the 80 GB
  } else if (a.device == "h200") {
    in.memory = 139 * GiB;
  } else if (a.device != "cpu") {
    std::smatch m;
    if (!std::regex_match(a.device, m, std::regex(R"(([0-9]+(\.[0-9]+)?)\s*(GiB|GB))"))) {
      throw ConfigError("--device '" + a.device + "': expected cpu, h100, h200 or a GPU's memory such as 48GiB");
    }
    in.memory = std::stod(m[1]) * (m[3] == "GiB" ? GiB : 1e9);
    if (!(in.memory >= 1e6)) throw ConfigError("--device '" + a.device + "': a GPU's memory must be at least 1 MB");
  }
  if (a.intra_gbps > 0) in.intra_gbps = a.intra_gbps;
  if (a.inter_gbps > 0) in.inter_gbps = a.inter_gbps;
}

int64_t config_vocab(const RunConfig& cfg) {
  const TokenizerConfig& t = cfg.data.tokenizer;
  const std::string trained = trained_tokenizer_path(cfg.data);
  if (t.kind == "sentencepiece" && t.model.empty() && !std::filesystem::exists(trained)) {
    throw ConfigError(cfg.file + ": data.tokenizer is trained by `localist prepare` (" + trained +
                      " does not exist yet); run prepare first, or give --vocab N");
  }
  std::vector<std::string> files;
  for (const auto& s : cfg.data.sources) {
    if (s.train) files.push_back(s.path);
  }
  return tokenizer_create(t, files, trained)->vocab_size();
}

// The pool as it will be once a specialist for `domain` is spawned (at the last step).
void add_spawn(const RunConfig& cfg, const std::string& domain, PlanInput& in) {
  bool known = false;
  for (const auto& s : cfg.data.sources) known = known || s.domain == domain;
  if (!known) throw ConfigError("--after-spawn '" + domain + "': no data source of " + cfg.file + " has this domain");
  if (in.pool.owner_at(domain, cfg.train.steps) != 0) {
    throw ConfigError("--after-spawn '" + domain + "': the pool already has a specialist for it");
  }
  const int64_t batch =
      cfg.pool.recruit.specialist_batch > 0 ? cfg.pool.recruit.specialist_batch : cfg.train.global_batch;
  in.pool.llms.push_back({pool_specialist_name(in.pool, domain), {domain}, "main", cfg.train.steps, batch, true});
  in.step = cfg.train.steps;
  bool main_keeps = false;  // the coordinator never proposes a spawn that leaves main nothing
  for (const auto& s : cfg.data.sources)
    main_keeps = main_keeps || (s.train && in.pool.owner_at(s.domain, in.step) == 0);
  if (!main_keeps) {
    throw ConfigError("--after-spawn '" + domain +
                      "': main would keep no training domain of its own, and such a spawn "
                      "is never proposed");
  }
}

// "0-199,488-511": consecutive ranks as ranges.
std::string ranges_text(const std::vector<int>& ranks) {
  std::string out;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + (j == i ? std::to_string(ranks[i]) : fmt::format("{}-{}", ranks[i], ranks[j]));
    i = j + 1;
  }
  return out;
}

std::string mb(int64_t bytes) { return fmt::format("{:.1f}", static_cast<double>(bytes) / 1e6); }

void print_plan(const PlanArgs& a, const PlanInput& in, const JobPlan& plan) {
  std::string map;
  for (const LlmPlan& l : plan.llms) map += (map.empty() ? "" : " | ") + l.name + " " + ranges_text(l.ranks);
  std::cout << fmt::format("plan of {} on {} rank(s){}, device {}{}: pool map {} (after every branch{})\n", a.config,
                           in.ranks, a.ranks_per_node > 0 ? fmt::format(" ({} per node)", a.ranks_per_node) : "",
                           a.device, in.memory > 0 ? fmt::format(" ({:.1f} GB)", in.memory / 1e9) : "", map,
                           a.after_spawn.empty() ? "" : " and the spawn for " + a.after_spawn);
  for (const LlmPlan& l : plan.llms) {
    std::cout << fmt::format("\nLLM {}: ranks {}, dp {} x bp {}{}{}, {} parameters\n", l.name, ranges_text(l.ranks),
                             l.dp, l.bp, l.vocab_parallel ? ", vocabulary parallel" : "",
                             l.spans_nodes ? ", across nodes" : "", l.parameters_whole);
    // The ranks of one block-parallel position hold and send the same: one row each.
    std::cout << fmt::format("  {:>12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11} {:>10} {:>10} {:>9}\n",
                             "bp rank", "blocks", "params MB", "grads MB", "optim MB", "buffers MB", "activ. MB",
                             "act.ckpt MB", "total MB", "wire MB", "wire ms");
    for (int b = 0; b < l.bp; ++b) {
      const RankPlan& r = l.per_rank[b];
      std::string blocks;
      for (int64_t k : r.blocks) blocks += (blocks.empty() ? "" : ",") + std::to_string(k);
      if (blocks.size() > 12) blocks = fmt::format("{} blocks", r.blocks.size());
      std::cout << fmt::format("  {:>12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11} {:>10} {:>10} {:>9.2f}\n",
                               fmt::format("{} (x{})", b, l.dp), blocks, mb(r.parameters), mb(r.gradients),
                               mb(r.optimizer), mb(r.sync_buffers), mb(r.activations), mb(r.activations_checkpointed),
                               mb(r.total()), mb(r.wire_bytes), r.wire_ms);
    }
  }
  std::cout << fmt::format(
      "\nactivations: one micro-batch of {} sequences ({}); wire: bytes each rank sends per step, at {} GB/s within "
      "a node and {} GB/s between nodes\n",
      in.train.micro_batch, in.train.activation_checkpointing ? "checkpointed, as configured" : "as configured",
      in.intra_gbps, in.inter_gbps);
  if (in.memory <= 0) {
    std::cout << fmt::format("largest rank: {} MB (no memory limit given: --device h100, h200 or 48GiB)\n",
                             mb(plan.peak_bytes));
  } else if (plan.fits) {
    std::cout << fmt::format("fits: the largest rank needs {} MB of {:.0f} MB (90% usable)\n", mb(plan.peak_bytes),
                             in.memory / 1e6);
  } else {
    const std::string fix = job_plan_smallest_fix(in);
    std::cout << fmt::format(
        "does not fit: the largest rank needs {} MB of {:.0f} MB (90% usable); {}\n", mb(plan.peak_bytes),
        in.memory / 1e6, fix.empty() ? "nothing short of more ranks or a smaller model fits" : "it fits with " + fix);
  }
}

}  // namespace

PlanInput plan_input_from_config(const RunConfig& cfg, const PlanArgs& a) {
  PlanInput in;
  in.model = cfg.model;
  in.train = cfg.train;
  in.pool = cfg.pool.declared ? cfg.pool : PoolConfig::single(cfg.train.global_batch);
  in.vocab = a.vocab > 0 ? a.vocab : config_vocab(cfg);
  in.block_parallel = cfg.distributed.block_parallel;
  in.zero = cfg.distributed.zero;
  in.vocab_parallel = cfg.distributed.vocab_parallel;
  in.bucket_mb = cfg.distributed.bucket_mb;
  in.ranks = a.ranks;
  in.ranks_per_node = a.ranks_per_node > 0 ? a.ranks_per_node : a.ranks;
  apply_device(a, in);
  in.step = cfg.train.steps;  // the pool once every declared branch has happened
  if (!a.after_spawn.empty()) add_spawn(cfg, a.after_spawn, in);
  return in;
}

int run_plan(const PlanArgs& a) {
  const RunConfig cfg = run_config_load(a.config, a.ranks, a.overrides);
  const PlanInput in = plan_input_from_config(cfg, a);
  const JobPlan plan = job_plan(in);
  if (a.json) {
    nlohmann::json j = job_plan_json(plan);
    if (!plan.fits) j["smallest_fix"] = job_plan_smallest_fix(in);
    std::cout << j.dump(2) << "\n";
  } else {
    print_plan(a, in, plan);
  }
  return plan.fits ? 0 : 1;
}

}  // namespace localist
