// SPDX-License-Identifier: Apache-2.0
// cli.cpp: see cli.h. Parsing and dispatch only: each verb's options fill a struct of its
// own, and the work lives in the verb's file (train_command, checkpoint_commands,
// report_command) and in data/, run/ and trainer/.
#include "launch/cli.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

#include "comm/launch_env.h"
#include "comm/nccl_library.h"
#include "core/build_info.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/progress_line.h"
#include "core/stop_signal.h"
#include "data/prepare.h"
#include "launch/checkpoint_commands.h"
#include "launch/export_command.h"
#include "launch/plan_command.h"
#include "launch/report_command.h"
#include "launch/run_config.h"
#include "launch/train_command.h"
#include "model/fused_attention.h"
#include "model/kernel_parallel.h"
#include "run/torch_runtime.h"

namespace localist {
namespace {

struct PrepareArgs {
  std::string config;
  bool force = false;
  ConfigOverrides overrides;
};

// Every verb's options, filled by the parser.
struct CliArgs {
  PrepareArgs prepare;
  TrainArgs train;
  EvalArgs eval;
  GenerateArgs generate;
  std::string inspect_path;
  ReportArgs report;
  ExportArgs export_args;
  PlanArgs plan;
};

int run_prepare(const PrepareArgs& a) {
  const LaunchEnv env = launch_env_detect();
  if (env.world_size > 1) {
    throw ConfigError("prepare runs as a single process; start it without mpirun/srun (world size " +
                      std::to_string(env.world_size) + " here)");
  }
  const RunConfig cfg = run_config_load(a.config, 0, a.overrides);
  logging_init({0, 1, cfg.run.log_level, ""});
  ProgressLine progress(true);
  const auto shards = prepare_shards(cfg.data, a.force, &progress);
  std::cout << corpus_summary(shards) << std::endl;
  return kExitOk;
}

std::string blas_spin_text() {
  const int spin = blas_worker_spin();
  return spin > 0 ? fmt::format(" (idle workers spin 2^{} cycles)", spin) : "";
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
  const std::string cuda_text =
      t.compiled_cuda.empty()
          ? std::string("not compiled in (a CPU-only LibTorch)")
          : fmt::format("LibTorch compiled with CUDA {} (cuDNN {}), localist's CUDA paths {}; {}", t.compiled_cuda,
                        t.compiled_cudnn.empty() ? "none" : t.compiled_cudnn, built_cuda ? "built" : "not built",
                        t.cuda_devices > 0 ? fmt::format("{} CUDA device(s) visible", t.cuda_devices)
                                           : std::string("no CUDA device visible"));
  std::cout << fmt::format(
      "localist {} (commit {})\n  LibTorch        {} ({} intra-op threads)\n  BLAS            {} in {}{}{}\n"
      "  CPU kernels     fused attention and FFN, {} build\n"
      "  CUDA            {}\n  NCCL            {}\n"
      "  launcher        {} (rank {} of {}, local rank {} of {})\n",
      build_version(), build_commit(), t.torch_version, t.intra_op_threads, t.blas.empty() ? "BLAS" : t.blas,
      t.blas_library.empty() ? "an unknown library" : t.blas_library,
      t.blas_is_reference ? "  <- reference BLAS: slow, see docs/install.md" : "", blas_spin_text(),
      fused_attention_capability(), cuda_text, nccl_text, env.launcher, env.rank, env.world_size, env.local_rank,
      env.local_size);
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

CLI::App* add_prepare(CLI::App& app, PrepareArgs& a) {
  auto* prepare = app.add_subcommand("prepare", "Turn the config's text sources into HDF5 token shards");
  prepare->add_option("config", a.config, "Run config (YAML)")->required();
  prepare->add_flag("--force", a.force, "Rebuild shards even when they are up to date");
  prepare->add_option("--set", a.overrides, "Override a config key: --set data.shard_dir=/scratch/shards");
  return prepare;
}

CLI::App* add_train(CLI::App& app, TrainArgs& a) {
  auto* train =
      app.add_subcommand("train", "Train a localist model from a config, on every rank of an mpirun or srun launch");
  train->add_option("config", a.config, "Run config (YAML)")->required();
  train->add_flag("--dry-run", a.dry_run, "Check config and data, write the effective config, do not train");
  train->add_option("--world-size", a.world_size, "With --dry-run: check the config for this many ranks")
      ->check(CLI::Range(1, 1 << 20));
  train->add_option("--set", a.overrides, "Override a config key: --set train.dial=0.4 --set run.dir=runs/x");
  train->add_option("--resume", a.resume, "Resume: 'auto' (newest complete checkpoint in the run dir) or a path");
  train->add_flag("--override-schedules", a.override_schedules,
                  "On resume, use this config's train.steps and LR/dial schedules where they differ from the "
                  "checkpoint's");
  return train;
}

CLI::App* add_eval(CLI::App& app, EvalArgs& a) {
  auto* eval = app.add_subcommand("eval", "Evaluate a checkpoint over dial values (sweep table, CSV, JSON, plot)");
  eval->add_option("--checkpoint", a.checkpoint, "Checkpoint directory")->required();
  eval->add_option("--dial", a.dial, "Dial values: 0.6, a list 0,0.5,1 or a sweep 0:1:0.1");
  eval->add_option("--dial-profile", a.dial_profile,
                   "Per-layer profile multiplying each dial value: uniform, linear, power:P or values 0,0.5,1");
  eval->add_option("--out", a.out_dir,
                   "Directory for sweep.csv/json/png (default: <run>/eval-step-N beside the checkpoints)");
  eval->add_option("--rules", a.rules_path, "Rules file (YAML/JSON) applied during evaluation");
  eval->add_option("--windows", a.windows, "Held-out windows per held-out source (default: train.eval_windows)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  eval->add_flag("--by-domain", a.by_domain, "Bits per token by held-out domain (the pool table), also for one LLM");
  eval->add_option("--device", a.device, "auto | cpu | cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  eval->add_flag("--no-domain-routes", a.no_domain_routes,
                 "Route every token by the learned router, as for text without a domain tag");
  eval->add_option("--llm", a.llm,
                   "A pool checkpoint: evaluate this LLM alone (default: the whole pool and its routers)");
  eval->add_option("--route-prefix", a.route_prefix, "A pool checkpoint: tokens argmin routing decides by (default 16)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  return eval;
}

CLI::App* add_generate(CLI::App& app, GenerateArgs& a) {
  auto* generate = app.add_subcommand("generate", "Sample text from a checkpoint at a chosen dial");
  generate->add_option("--checkpoint", a.checkpoint, "Checkpoint directory")->required();
  generate->add_option("--prompt", a.prompt, "Prompt text")->required();
  generate->add_option("--dial", a.dial, "Locality dial in [0, 1]");
  generate->add_option("--dial-profile", a.dial_profile,
                       "Per-layer profile multiplying the dial: uniform, linear, power:P or values 0,0.5,1");
  generate->add_option("--rules", a.rules_path, "Rules file (YAML/JSON) applied while generating");
  generate->add_option("--domain", a.domain,
                       "The prompt's domain (domain rules, the routes of recruited blocks; in a "
                       "pool, the LLM that owns it)");
  generate->add_option("--llm", a.llm,
                       "A pool checkpoint: answer with this LLM (default: the owner of --domain, else "
                       "the LLM with the shortest code length for the prompt)");
  generate->add_option("--seed", a.seed, "Sampling seed");
  generate->add_option("--device", a.device, "auto | cpu | cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  generate->add_option("--temperature", a.temperature, "Sampling temperature (> 0)")->check(CLI::Range(1e-6, 100.0));
  generate->add_option("--top-k", a.top_k, "Sample among the k most likely tokens (0: all)")
      ->check(CLI::Range(0, 1 << 24));
  generate->add_option("--max-tokens", a.max_tokens, "Tokens to generate")->check(CLI::Range(1, 1 << 20));
  generate->add_flag("--show-attention", a.show_attention, "Print each token's block and top attended positions");
  return generate;
}

CLI::App* add_report(CLI::App& app, ReportArgs& rep) {
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
  return report;
}

CLI::App* add_plan(CLI::App& app, PlanArgs& a) {
  auto* plan =
      app.add_subcommand("plan", "Plan a job without training: meshes, pool map, bytes held and sent per rank");
  plan->add_option("config", a.config, "Run config (YAML)")->required();
  plan->add_option("--ranks", a.ranks, "Ranks of the job")->required()->check(CLI::Range(1, 1 << 20));
  plan->add_option("--ranks-per-node", a.ranks_per_node, "Ranks per node (GPUs per node; default: all on one node)")
      ->check(CLI::Range(1, 1 << 16));
  plan->add_option("--device", a.device, "cpu, h100, h200, or a GPU's memory such as 48GiB (default cpu)");
  plan->add_option("--after-spawn", a.after_spawn, "Plan the pool after a specialist is spawned for this domain");
  plan->add_option("--intra-gbps", a.intra_gbps, "GB/s between ranks of a node (default: the device's)")
      ->check(CLI::PositiveNumber);
  plan->add_option("--inter-gbps", a.inter_gbps, "GB/s between nodes (default: the device's)")
      ->check(CLI::PositiveNumber);
  plan->add_option("--vocab", a.vocab, "Vocabulary size (default: the config's tokenizer)")
      ->check(CLI::Range(1LL, 1LL << 31));
  plan->add_option("--set", a.overrides, "Override a config key: --set distributed.zero=1");
  plan->add_flag("--json", a.json, "Print the plan as JSON");
  return plan;
}

CLI::App* add_export(CLI::App& app, ExportArgs& a) {
  auto* ex = app.add_subcommand("export", "Write a checkpoint's LLM (or pool) as a Hugging Face model directory");
  ex->add_option("--checkpoint", a.checkpoint, "Checkpoint directory (or its run directory)")->required();
  ex->add_option("--format", a.format,
                 "Output format: hf (the localist model, remote code) or gpt2 (its λ = 0 reading as GPT2LMHeadModel)")
      ->check(CLI::IsMember({"hf", "gpt2"}));
  ex->add_option("--out", a.out, "New directory to write (must not exist, or be empty)")->required();
  ex->add_option("--llm", a.llm, "A pool checkpoint: export this LLM (default: main)");
  ex->add_flag("--pool", a.pool, "Export every LLM of the pool and the pool's router (pool_localist.py)");
  ex->add_option("--dtype", a.dtype, "Parameter type in model.safetensors: fp32 | bf16")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  ex->add_option("--windows", a.windows, "Held-out windows per source for the model card (default: train.eval_windows)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  return ex;
}

// Runs the verb the command line chose; `world` is the MPI world of a multi-rank run.
int dispatch(CLI::App& app, const CliArgs& a, std::shared_ptr<Communicator>& world) {
  if (app.got_subcommand("prepare")) return run_prepare(a.prepare);
  if (app.got_subcommand("train")) return run_train(a.train, world);
  if (app.got_subcommand("eval")) return run_eval(a.eval);
  if (app.got_subcommand("generate")) return run_generate(a.generate);
  if (app.got_subcommand("inspect")) return run_inspect(a.inspect_path);
  if (app.got_subcommand("report")) return run_report(a.report);
  if (app.got_subcommand("export")) return run_export(a.export_args);
  if (app.got_subcommand("plan")) return run_plan(a.plan);
  if (app.got_subcommand("info")) return run_info();
  return kExitFailure;
}

}  // namespace

int cli_main(int argc, char** argv) {
  CLI::App app{"localist: train Localist LLMs whose locality is set by one dial (docs/ for the method)", "localist"};
  app.set_version_flag("--version", fmt::format("localist {} (commit {})", build_version(), build_commit()));
  app.require_subcommand(1);
  CliArgs a;
  add_prepare(app, a.prepare);
  add_train(app, a.train);
  add_eval(app, a.eval);
  add_generate(app, a.generate);
  auto* inspect = app.add_subcommand("inspect", "Describe a token shard or a model checkpoint");
  inspect->add_option("path", a.inspect_path, "Token shard file or checkpoint directory")->required();
  add_report(app, a.report);
  add_export(app, a.export_args);
  add_plan(app, a.plan);
  app.add_subcommand("info", "Print build and runtime facts: LibTorch, BLAS, CUDA, NCCL, launcher");

  // The MPI world once training on several ranks started; an error then ends every rank.
  std::shared_ptr<Communicator> world;
  std::string verb = "localist";
  try {
    app.parse(argc, argv);
    for (auto* sub : app.get_subcommands()) verb = "localist " + sub->get_name();
    for (int i = 0; i < argc; ++i) a.report.command += (i ? " " : "") + std::string(argv[i]);
    return dispatch(app, a, world);
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
    if (world && world->size() > 1) world->abort(e.exit_code());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s (please report this with the command you ran)\n", verb.c_str(),
                 one_line(e.what()).c_str());
    if (world && world->size() > 1) world->abort(kExitFailure);
    return kExitFailure;
  }
}

}  // namespace localist
