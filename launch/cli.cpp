// SPDX-License-Identifier: Apache-2.0
// cli.cpp: see cli.h. Parsing and dispatch only; the work lives in data/ and trainer/.
#include "launch/cli.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "comm/launch_env.h"
#include "comm/mpi_communicator.h"
#include "comm/nccl_library.h"
#include "core/build_info.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/logging.h"
#include "core/progress_line.h"
#include "core/stop_signal.h"
#include "data/batch_reader.h"
#include "data/byte_tokenizer.h"
#include "data/prepare.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"
#include "launch/dial_arg.h"
#include "launch/job_end.h"
#include "launch/loaded_checkpoint.h"
#include "launch/pool_commands.h"
#include "launch/report_command.h"
#include "launch/run_config.h"
#include "model/fused_attention.h"
#include "model/kernel_parallel.h"
#include "model/rules.h"
#include "recruitment/recruiter.h"
#include "run/torch_runtime.h"
#include "run/train_run.h"
#include "trainer/evaluate.h"
#include "trainer/generate.h"

namespace localist {
namespace fs = std::filesystem;
namespace {

// Printable one-line preview of text (newlines and tabs escaped, cut at `max` bytes).
std::string preview(const std::string& text, size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else
      out += c;
  }
  return out;
}

std::string blas_spin_text() {
  const int spin = blas_worker_spin();
  return spin > 0 ? fmt::format(" (idle workers spin 2^{} cycles)", spin) : "";
}

void warn_if_slow_blas() {
  const TorchRuntimeInfo info = torch_runtime_info();
  if (info.blas_is_reference) {
    spdlog::warn(
        "LibTorch is using the reference BLAS ({}), ~37x slower than OpenBLAS; run tools/setup.sh "
        "(or update-alternatives --set libblas.so.3-x86_64-linux-gnu <openblas>)",
        info.blas_library);
  }
}

ConfigOverrides g_overrides;        // --set key=value, for prepare and train
bool g_override_schedules = false;  // train --override-schedules
constexpr const char* kDefaultEvalDial = "0:1:0.1";
std::string g_llm;            // eval/generate --llm: one LLM of a pool checkpoint
int64_t g_route_prefix = 16;  // eval --route-prefix: argmin routing's prefix length
bool g_by_domain = false;     // eval --by-domain: the pool table also for a one-LLM checkpoint
// The MPI world once training on several ranks started; an error then ends every rank.
std::shared_ptr<Communicator> g_world;

int run_prepare(const std::string& config_path, bool force) {
  const LaunchEnv env = launch_env_detect();
  if (env.world_size > 1) {
    throw ConfigError("prepare runs as a single process; start it without mpirun/srun (world size " +
                      std::to_string(env.world_size) + " here)");
  }
  const RunConfig cfg = run_config_load(config_path, 0, g_overrides);
  logging_init({0, 1, cfg.run.log_level, ""});
  ProgressLine progress(true);
  const auto shards = prepare_shards(cfg.data, force, &progress);
  std::cout << corpus_summary(shards) << std::endl;
  return kExitOk;
}

int run_train(const std::string& config_path, bool dry_run, int world_override, const std::string& resume) {
  // From the first line on, not from the training loop: a preemption signal during start-
  // up (config, data checks, MPI start) is then honoured at the first step boundary
  // instead of ending the process. (Before main, while LibTorch loads, it still ends it.)
  if (!dry_run) stop_signal_install();
  const LaunchEnv env = launch_env_detect();
  const int world = world_override > 0 ? world_override : env.world_size;
  if (world_override > 0 && !dry_run) throw ConfigError("--world-size only applies to --dry-run");
  if (world_override == 0) launch_env_require_mpi(env);  // also in a dry run: it checks the launch line
  const RunConfig cfg = run_config_load(config_path, world, g_overrides);
  // Check the data and the rules file before anything is written, so a bad run leaves
  // no run directory.
  const BatchReader reader(cfg.data, cfg.model.context, static_cast<uint64_t>(cfg.run.seed), cfg.train.global_batch);
  if (!cfg.train.rules.empty()) RuleSet::load(cfg.train.rules, cfg.model.k_max);
  if (!resume.empty() && resume != "auto") checkpoint_resolve(resume);  // a wrong path writes nothing
  const int64_t bp = cfg.distributed.block_parallel, dp = world / bp;
  const int rank = world_override > 0 ? 0 : env.rank;
  const int dp_rank = static_cast<int>(rank / bp);

  const fs::path run_dir(cfg.run.dir);
  std::error_code ec;
  fs::create_directories(run_dir / "logs", ec);
  if (ec) throw Error(cfg.run.dir + ": cannot create run directory: " + ec.message());
  logging_init({rank, world, cfg.run.log_level, (run_dir / "logs").string()});
  warn_if_slow_blas();
  const std::string effective = run_config_to_yaml(cfg);
  if (rank == 0) write_file_atomic((run_dir / "config.effective.yaml").string(), effective);

  if (!dry_run) {
    TrainPlan plan;
    plan.run_dir = cfg.run.dir;
    plan.config_yaml = effective;
    plan.seed = static_cast<uint64_t>(cfg.run.seed);
    plan.model = cfg.model;
    plan.data = cfg.data;
    plan.train = cfg.train;
    plan.block_parallel = cfg.distributed.block_parallel;
    plan.timeout_s = cfg.distributed.timeout_s;
    plan.startup_timeout_s = cfg.distributed.startup_timeout_s;
    plan.bucket_mb = cfg.distributed.bucket_mb;
    plan.zero = cfg.distributed.zero;
    plan.vocab_parallel = cfg.distributed.vocab_parallel;
    plan.resume = resume;
    plan.recruitment = cfg.recruitment;
    plan.pool = cfg.pool;
    plan.check_resume = [effective](const std::string& checkpoint_yaml) {
      const ResumeConflicts c = run_config_resume_conflicts(checkpoint_yaml, effective);
      auto list = [](const std::vector<std::string>& v) {
        std::string out;
        for (const auto& k : v) out += (out.empty() ? "" : ", ") + k;
        return out;
      };
      if (!c.fixed.empty()) {
        throw ConfigError("--resume: " + list(c.fixed) +
                          " differ(s) from the checkpoint's config; a changed model or "
                          "data order cannot continue this run (use a new run.dir to start afresh)");
      }
      if (!c.schedules.empty() && !g_override_schedules) {
        throw ConfigError("--resume: " + list(c.schedules) +
                          " differ(s) from the checkpoint's config; pass "
                          "--override-schedules to continue with this config's schedules, or restore them");
      }
      if (!c.schedules.empty()) spdlog::warn("--override-schedules: using this config's {}", list(c.schedules));
    };
    plan.local_rank = env.local_rank;
    JobEndPlan end;
    if (world > 1) {
      const MpiWorld w = mpi_world(env, cfg.distributed.startup_timeout_s);
      g_world = w.world;
      plan.world = g_world;
      plan.local_rank = w.local_rank;  // MPI's view of the node (the launcher's may be absent)
      end.local_rank = w.local_rank;
      end.node_peers = w.node_peers;
      end.timeout_s = cfg.distributed.timeout_s;
    }
    const TrainSummary s = train_run(plan);
    plan.world.reset();
    if (g_world) {
      end.world = std::move(g_world);
      job_end(std::move(end));  // returns only when every rank arrived and finalised
    }
    if (s.stop_signal != 0) {
      if (rank == 0) {
        std::cout << fmt::format(
            "stopped '{}' by signal {} before step {}; checkpoint: {}\n"
            "continue with: localist train {} --resume auto\n",
            cfg.run.name, s.stop_signal, s.steps, s.checkpoint, config_path);
      }
      logging_shutdown();
      return kExitStopped;
    }
    if (rank != 0) return kExitOk;
    if (s.already_complete) {
      std::cout << fmt::format(
          "'{}' is already complete: its checkpoint is at step {} and train.steps is {}; nothing "
          "was trained (raise train.steps to continue)",
          cfg.run.name, s.steps, cfg.train.steps);
      if (s.last_logged_step >= 0) {
        std::cout << fmt::format("; last logged step {}: loss {:.4f} (ce {:.4f} nats)", s.last_logged_step,
                                 s.final_loss, s.final_ce);
      }
    } else {
      std::cout << fmt::format("trained '{}': {} steps in {:.1f} s, final loss {:.4f} (ce {:.4f} nats)", cfg.run.name,
                               s.steps, s.seconds, s.final_loss, s.final_ce);
    }
    if (s.evaluated) {
      std::cout << fmt::format("; held-out: ce {:.4f} nats, {:.3f} bits/byte, ppl {:.3f}, acc {:.3f}",
                               s.final_eval.ce_nats, s.final_eval.bits_per_byte, s.final_eval.perplexity,
                               s.final_eval.accuracy);
    }
    for (const auto& l : s.llms) {
      std::cout << fmt::format("\n  {:<12} {:.4f} bits/token last logged", l.name, l.bits_per_token);
      if (l.eval_bits_per_byte >= 0) std::cout << fmt::format(", held-out {:.3f} bits/byte", l.eval_bits_per_byte);
    }
    std::cout << "\ncheckpoint: " << s.checkpoint << std::endl;
    logging_shutdown();
    return kExitOk;
  }

  spdlog::info("dry run of '{}' ({}): world {} = dp {} x bp {}, launcher {}", cfg.run.name, config_path, world, dp, bp,
               env.launcher);
  const int64_t per_rank = cfg.train.global_batch / dp;
  spdlog::info("batch: {} sequences x {} tokens per step, {} per data-parallel rank in {} micro-batches of {}",
               cfg.train.global_batch, cfg.model.context, per_rank, per_rank / cfg.train.micro_batch,
               cfg.train.micro_batch);
  for (size_t i = 0; i < reader.shards().size(); ++i) {
    const auto& m = reader.shards()[i]->meta();
    const auto& s = reader.sampler().sources()[i];
    spdlog::info("source {}: domain {}, {} tokens, weight {}, from step {}", s.name, m.domain, m.token_count, s.weight,
                 s.start_step);
  }
  const TokenBatch b = reader.read(0, dp_rank, static_cast<int>(dp));
  const auto& m0 = reader.shards()[b.source[0]]->meta();
  if (m0.tokenizer_kind == "byte") {
    ByteTokenizer tok;
    spdlog::info("step 0, rank {} row 0 ({}): \"{}\"", rank, reader.sampler().sources()[b.source[0]].name,
                 preview(tok.decode(b.tokens.data(), 80), 80));
  }
  spdlog::info("config and data are valid; effective config: {}", (run_dir / "config.effective.yaml").string());
  logging_shutdown();
  return kExitOk;
}

int run_eval(const std::string& checkpoint, const std::string& dial_text, const std::string& rules_path,
             bool no_domain_routes, const std::string& out_dir, int64_t windows, const std::string& device) {
  const std::vector<double> dials = dial_arg_parse(dial_text);
  LoadedCheckpoint c = load_checkpoint(checkpoint, device);
  if (!g_llm.empty()) c.select(g_llm);
  if (g_llm.empty() && (c.llm_names().size() > 1 || g_by_domain)) {
    // One dial value: the one given, else the checkpoint's own (its schedule's at its step).
    const auto trained = c.contents->state.value("schedules", nlohmann::json::object()).value("dial", nlohmann::json());
    const bool given = dial_text != kDefaultEvalDial;
    const double d = given || !trained.is_array() || trained.empty() ? dials[0] : trained[0].get<double>();
    if (given && dials.size() > 1) spdlog::warn("--dial: a pool is evaluated at one dial value; using {}", d);
    return run_pool_eval(c, d, rules_path, out_dir, windows, g_route_prefix);
  }
  std::string described;
  const RuleSet rules = rules_for(c, rules_path, no_domain_routes, &described);
  const EvalSet set = eval_set_load(c.cfg.data, c.cfg.model.context, windows > 0 ? windows : c.cfg.train.eval_windows);
  const auto texts = c.tokenizer->token_texts();
  const EvalInputs in = eval_inputs_for(c, texts);
  std::vector<EvalMetrics> rows;
  ProgressLine progress(true);
  for (size_t i = 0; i < dials.size(); ++i) {
    progress.update(fmt::format("eval [{}/{}] dial {:.2f}", i + 1, dials.size(), dials[i]));
    rows.push_back(evaluate(*c.model, set, std::vector<double>(c.cfg.model.n_layers, dials[i]), &rules, in));
  }
  progress.finish();
  std::cout << fmt::format("checkpoint {} (step {}{}), {} held-out windows of {} tokens{}\n", c.dir, c.meta.step,
                           c.llm == "main" ? "" : ", LLM " + c.llm, set.tokens.size(0), c.cfg.model.context, described)
            << sweep_table(rows) << std::endl;
  // Default: beside the checkpoints of the run (<run>/checkpoints/step-N -> <run>/eval-step-N).
  const std::string out =
      out_dir.empty()
          ? (fs::path(c.dir).parent_path().parent_path() / ("eval-step-" + std::to_string(c.meta.step))).string()
          : out_dir;
  for (const auto& f : sweep_write(rows, out)) std::cout << "wrote " << f << "\n";
  return kExitOk;
}

int run_generate(const std::string& checkpoint, const std::string& prompt, const std::string& dial_text,
                 double temperature, int top_k, int max_tokens, bool show_attention, const std::string& rules_path,
                 const std::string& domain, uint64_t seed, const std::string& device) {
  const std::vector<double> dial = dial_arg_parse(dial_text);
  if (dial.size() != 1) throw ConfigError("--dial: generate takes one dial value");
  LoadedCheckpoint c = load_checkpoint(checkpoint, device);
  checkpoint_require_domain(c, domain);
  std::vector<uint32_t> ids;
  c.tokenizer->encode(prompt, ids);
  // A pool answers with the LLM asked for, the domain's owner, or the shortest code length.
  if (!g_llm.empty()) {
    c.select(g_llm);
  } else if (c.llm_names().size() > 1 && !domain.empty()) {
    c.select(c.cfg.pool.llms.at(c.cfg.pool.owner_at(domain, c.meta.step)).name);
    std::cout << "domain " << domain << " is owned by " << c.llm << "\n";
  } else if (c.llm_names().size() > 1) {
    c.select(route_prompt(c, ids, dial[0], rules_path));
  }
  const RuleSet rules = rules_for(c, rules_path, false, nullptr);
  if (domain.empty() && !c.domain_routes.empty()) {
    std::vector<std::string> names;
    for (const auto& r : c.domain_routes) names.push_back(r.domain);
    spdlog::info(
        "this model has blocks recruited for the domain(s) {}; the prompt has no domain, so the learned router "
        "routes it (pass --domain NAME to route it as training did)",
        fmt::join(names, ", "));
  }
  GenerateOptions o;
  o.dial.assign(c.cfg.model.n_layers, dial[0]);
  o.temperature = temperature;
  o.top_k = top_k;
  o.max_tokens = max_tokens;
  o.seed = seed;
  o.rules = &rules;
  o.domain = domain;
  const auto texts = c.tokenizer->token_texts();
  const auto out = generate(*c.model, ids, o, texts, c.device);
  std::vector<uint32_t> gen_ids;
  gen_ids.reserve(out.size());
  for (const auto& g : out) gen_ids.push_back(g.id);
  std::cout << prompt << c.tokenizer->decode(gen_ids) << std::endl;
  if (show_attention) {
    std::vector<uint32_t> all = ids;
    all.insert(all.end(), gen_ids.begin(), gen_ids.end());
    std::cout << fmt::format("\n{:>5}  {:<8} {:>5}  top attended earlier positions (weight)\n", "pos", "token",
                             "block");
    for (size_t i = 0; i < out.size(); ++i) {
      std::string line = fmt::format("{:>5}  {:<8} {:>5} ", ids.size() + i, "\"" + preview(texts[out[i].id], 6) + "\"",
                                     out[i].block_slot);
      for (const auto& [pos, w] : out[i].attended) {
        line += fmt::format("  {}:\"{}\" ({:.2f})", pos, preview(texts[all[pos]], 6), w);
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
      std::cout << "  first text      \"" << preview(tok.decode(head), 80) << "\"\n";
    }
  }
  return kExitOk;
}

int run_info() {
  const TorchRuntimeInfo t = torch_runtime_info();
  const LaunchEnv env = launch_env_detect();
#ifdef LOCALIST_HAVE_CUDA
  const bool built_cuda = true;
#else
  const bool built_cuda = false;
#endif
  // NCCL is loaded at run time (comm/nccl_library.h): say what this process finds.
  const NcclLoad& nccl = nccl_library();
  const std::string nccl_text =
      nccl.library ? fmt::format("{}.{}.{} loaded from {}", nccl.library->version / 10000,
                                 nccl.library->version / 100 % 100, nccl.library->version % 100, nccl.library->path)
                   : "not loaded (CUDA tensors on several ranks need it): " + nccl.error;
  std::cout << fmt::format(
      "localist {} (commit {})\n  LibTorch        {} ({} intra-op threads)\n  BLAS            {}{}{}\n"
      "  CPU kernels     fused attention and FFN, {} build\n"
      "  CUDA            built {}, {} device(s) visible\n  NCCL            {}\n"
      "  launcher        {} (rank {} of {}, local rank {} of {})\n",
      build_version(), build_commit(), t.torch_version, t.intra_op_threads,
      t.blas_library.empty() ? "not loaded" : t.blas_library,
      t.blas_is_reference ? "  <- reference BLAS: slow, run tools/setup.sh" : "", blas_spin_text(),
      fused_attention_capability(), built_cuda ? "yes" : "no", t.cuda_devices, nccl_text, env.launcher, env.rank,
      env.world_size, env.local_rank, env.local_size);
  return kExitOk;
}

std::string one_line(std::string s) {
  // LibTorch appends a C++ backtrace to its messages; the first sentence is the message.
  const size_t trace = s.find("Exception raised from");
  if (trace != std::string::npos) s = s.substr(0, trace);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.pop_back();
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

int cli_main(int argc, char** argv) {
  CLI::App app{"localist: train Localist LLMs whose locality is set by one dial (docs/ for the method)", "localist"};
  app.set_version_flag("--version", fmt::format("localist {} (commit {})", build_version(), build_commit()));
  app.require_subcommand(1);

  std::string config, checkpoint, prompt, dial = kDefaultEvalDial, gen_dial = "0", resume, inspect_path, out_dir,
                                          rules_path, device = "auto", domain;
  int64_t windows = 0;
  uint64_t seed = 1;
  bool force = false, dry_run = false, show_attention = false, no_domain_routes = false;
  int world_size = 0;
  double temperature = 1.0;
  int top_k = 0, max_tokens = 200;

  auto* prepare = app.add_subcommand("prepare", "Turn the config's text sources into HDF5 token shards");
  prepare->add_option("config", config, "Run config (YAML)")->required();
  prepare->add_flag("--force", force, "Rebuild shards even when they are up to date");
  prepare->add_option("--set", g_overrides, "Override a config key: --set data.shard_dir=/scratch/shards");

  auto* train =
      app.add_subcommand("train", "Train a localist model from a config, on every rank of an mpirun or srun launch");
  train->add_option("config", config, "Run config (YAML)")->required();
  train->add_flag("--dry-run", dry_run, "Check config and data, write the effective config, do not train");
  train->add_option("--world-size", world_size, "With --dry-run: check the config for this many ranks")
      ->check(CLI::Range(1, 1 << 20));
  train->add_option("--set", g_overrides, "Override a config key: --set train.dial=0.4 --set run.dir=runs/x");
  train->add_option("--resume", resume, "Resume: 'auto' (newest complete checkpoint in the run dir) or a path");
  train->add_flag("--override-schedules", g_override_schedules,
                  "On resume, use this config's train.steps and LR/dial schedules where they differ from the "
                  "checkpoint's");

  auto* eval = app.add_subcommand("eval", "Evaluate a checkpoint over dial values (sweep table, CSV, JSON, plot)");
  eval->add_option("--checkpoint", checkpoint, "Checkpoint directory")->required();
  eval->add_option("--dial", dial, "Dial values: 0.6, a list 0,0.5,1 or a sweep 0:1:0.1");
  eval->add_option("--out", out_dir,
                   "Directory for sweep.csv/json/png (default: <run>/eval-step-N beside the checkpoints)");
  eval->add_option("--rules", rules_path, "Rules file (YAML/JSON) applied during evaluation");
  eval->add_option("--windows", windows, "Held-out windows per held-out source (default: train.eval_windows)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  eval->add_flag("--by-domain", g_by_domain, "Bits per token by held-out domain (the pool table), also for one LLM");
  eval->add_option("--device", device, "auto | cpu | cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  eval->add_flag("--no-domain-routes", no_domain_routes,
                 "Route every token by the learned router, as for text without a domain tag");
  eval->add_option("--llm", g_llm,
                   "A pool checkpoint: evaluate this LLM alone (default: the whole pool and its routers)");
  eval->add_option("--route-prefix", g_route_prefix, "A pool checkpoint: tokens argmin routing decides by (default 16)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));

  auto* generate = app.add_subcommand("generate", "Sample text from a checkpoint at a chosen dial");
  generate->add_option("--checkpoint", checkpoint, "Checkpoint directory")->required();
  generate->add_option("--prompt", prompt, "Prompt text")->required();
  generate->add_option("--dial", gen_dial, "Locality dial in [0, 1]");
  generate->add_option("--rules", rules_path, "Rules file (YAML/JSON) applied while generating");
  generate->add_option("--domain", domain,
                       "The prompt's domain (domain rules, the routes of recruited blocks; in a "
                       "pool, the LLM that owns it)");
  generate->add_option("--llm", g_llm,
                       "A pool checkpoint: answer with this LLM (default: the owner of --domain, else "
                       "the LLM with the shortest code length for the prompt)");
  generate->add_option("--seed", seed, "Sampling seed");
  generate->add_option("--device", device, "auto | cpu | cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  generate->add_option("--temperature", temperature, "Sampling temperature (> 0)")->check(CLI::Range(1e-6, 100.0));
  generate->add_option("--top-k", top_k, "Sample among the k most likely tokens (0: all)")
      ->check(CLI::Range(0, 1 << 24));
  generate->add_option("--max-tokens", max_tokens, "Tokens to generate")->check(CLI::Range(1, 1 << 20));
  generate->add_flag("--show-attention", show_attention, "Print each token's block and top attended positions");

  auto* inspect = app.add_subcommand("inspect", "Describe a token shard or a model checkpoint");
  inspect->add_option("path", inspect_path, "Token shard file or checkpoint directory")->required();

  ReportArgs rep;
  auto* report = app.add_subcommand("report",
                                    "Write the audit report of a checkpoint: DIR/report.html (one "
                                    "self-contained page) and DIR/report.json");
  report->add_option("--checkpoint", rep.checkpoint, "Checkpoint directory (or its run directory)")->required();
  report->add_option("--out", rep.out_dir, "Directory for report.html and report.json")->required();
  auto* text_opt = report->add_option("--text", rep.text_path, "UTF-8 text file to show (default: held-out windows)");
  report->add_option("--windows", rep.windows, "Held-out windows per held-out source (default: train.eval_windows)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30))
      ->excludes(text_opt);
  report->add_option("--dial", rep.dial, "Dial for the token view, metrics and bounds (default: the checkpoint's)");
  report->add_option("--sweep", rep.sweep, "Dial values of the sweep section (default 0:1:0.1)");
  report->add_option("--rules", rep.rules_path, "Rules file (YAML/JSON) applied and audited");
  report->add_option("--domain", rep.domain,
                     "The text's domain (domain rules, routes of recruited blocks; in a pool, "
                     "the LLM that owns it serves every window)");
  report->add_option("--llm", rep.llm,
                     "A pool checkpoint: report on this LLM alone (default: main's sections, each "
                     "window from the LLM that serves it)");
  report->add_option("--max-tokens", rep.max_tokens, "Refuse a text longer than this (default 16384)")
      ->check(CLI::Range(int64_t(2), int64_t(1) << 24));
  report
      ->add_option("--fidelity-threshold", rep.fidelity_threshold,
                   "List a rule's queries below this mass (default 0.5)")
      ->check(CLI::Range(0.0, 1.0));
  report
      ->add_option("--route-prefix", rep.route_prefix, "A pool: tokens the code-length routing decides by (default 16)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  report->add_option("--device", rep.device, "auto | cpu | cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));

  auto* info = app.add_subcommand("info", "Print build and runtime facts: LibTorch, BLAS, CUDA, NCCL, launcher");

  std::string verb = "localist";
  try {
    app.parse(argc, argv);
    for (auto* sub : app.get_subcommands()) verb = "localist " + sub->get_name();
    if (prepare->parsed()) return run_prepare(config, force);
    if (train->parsed()) return run_train(config, dry_run, world_size, resume);
    if (eval->parsed()) return run_eval(checkpoint, dial, rules_path, no_domain_routes, out_dir, windows, device);
    if (generate->parsed()) {
      return run_generate(checkpoint, prompt, gen_dial, temperature, top_k, max_tokens, show_attention, rules_path,
                          domain, seed, device);
    }
    if (inspect->parsed()) return run_inspect(inspect_path);
    if (report->parsed()) {
      for (int i = 0; i < argc; ++i) rep.command += (i ? " " : "") + std::string(argv[i]);
      return run_report(rep);
    }
    if (info->parsed()) return run_info();
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: error: %s (see %s --help)\n", verb.c_str(), one_line(e.what()).c_str(), verb.c_str());
    return kExitConfig;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", verb.c_str(), one_line(e.what()).c_str());
    // Peers blocked in a collective would otherwise wait out their timeouts: end them all.
    if (g_world && g_world->size() > 1) g_world->abort(e.exit_code());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s (please report this with the command you ran)\n", verb.c_str(),
                 one_line(e.what()).c_str());
    if (g_world && g_world->size() > 1) g_world->abort(kExitFailure);
    return kExitFailure;
  }
  return kExitFailure;
}

}  // namespace localist
