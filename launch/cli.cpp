// cli.cpp: see cli.h. Parsing and dispatch only; the work lives in data/ and trainer/.
#include "launch/cli.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "comm/launch_env.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/logging.h"
#include "core/progress_line.h"
#include "data/batch_reader.h"
#include "data/byte_tokenizer.h"
#include "data/prepare.h"
#include "data/token_shard.h"
#include "launch/dial_arg.h"
#include "launch/run_config.h"
#include "trainer/torch_runtime.h"

namespace localist {
namespace fs = std::filesystem;
namespace {

// Printable one-line preview of text (newlines and tabs escaped, cut at `max` bytes).
std::string preview(const std::string& text, size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else out += c;
  }
  return out;
}

void warn_if_slow_blas() {
  const TorchRuntimeInfo info = torch_runtime_info();
  if (info.blas_is_reference) {
    spdlog::warn("LibTorch is using the reference BLAS ({}), ~37x slower than OpenBLAS; run tools/setup.sh "
                 "(or update-alternatives --set libblas.so.3-x86_64-linux-gnu <openblas>)", info.blas_library);
  }
}

[[noreturn]] void not_available(const std::string& what, const std::string& when) {
  throw Error(what + " is not available in this build yet: it arrives with " + when +
                  " (see docs/roadmap.md)", kExitNotAvailable);
}

int run_prepare(const std::string& config_path, bool force) {
  const LaunchEnv env = launch_env_detect();
  if (env.world_size > 1) {
    throw ConfigError("prepare runs as a single process; start it without mpirun/srun (world size " +
                      std::to_string(env.world_size) + " here)");
  }
  const RunConfig cfg = run_config_load(config_path, 0);
  logging_init({0, 1, cfg.run.log_level, ""});
  ProgressLine progress(true);
  const auto shards = prepare_shards(cfg.data, force, &progress);
  std::cout << corpus_summary(shards) << std::endl;
  return kExitOk;
}

int run_train(const std::string& config_path, bool dry_run, int world_override, const std::string& resume) {
  const LaunchEnv env = launch_env_detect();
  const int world = world_override > 0 ? world_override : env.world_size;
  if (world_override > 0 && !dry_run) throw ConfigError("--world-size only applies to --dry-run");
  const RunConfig cfg = run_config_load(config_path, world);
  if (!resume.empty()) not_available("--resume", "the HDF5 checkpoint issue (#5)");
  if (!dry_run) {
    not_available("training", "the localist model and trainer (issue #3); `localist train --dry-run " + config_path +
                                  "` checks the config and data now");
  }
  // Check the data before anything is written, so a bad run leaves no run directory.
  const BatchReader reader(cfg.data, cfg.model.context, static_cast<uint64_t>(cfg.run.seed), cfg.train.global_batch);
  const int64_t bp = cfg.distributed.block_parallel, dp = world / bp;
  const int rank = world_override > 0 ? 0 : env.rank;
  const int dp_rank = static_cast<int>(rank / bp);

  const fs::path run_dir(cfg.run.dir);
  std::error_code ec;
  fs::create_directories(run_dir / "logs", ec);
  if (ec) throw Error(cfg.run.dir + ": cannot create run directory: " + ec.message());
  logging_init({rank, world, cfg.run.log_level, (run_dir / "logs").string()});
  warn_if_slow_blas();
  if (rank == 0) write_file_atomic((run_dir / "config.effective.yaml").string(), run_config_to_yaml(cfg));

  spdlog::info("dry run of '{}' ({}): world {} = dp {} x bp {}, launcher {}", cfg.run.name, config_path, world, dp,
               bp, env.launcher);
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

int run_inspect(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": no such file or directory");
  if (fs::is_directory(path, ec)) not_available("inspecting checkpoints", "the HDF5 checkpoint issue (#5)");
  ShardReader shard(path);
  const ShardMeta& m = shard.meta();
  std::cout << fmt::format(
      "token shard {}\n  format version  {}\n  source          {} ({})\n  source sha256   {}\n"
      "  source bytes    {}\n  domain          {}\n  tokenizer       {} (vocabulary {}, hash {})\n"
      "  tokenizer spec  {}\n  documents       {}\n  tokens          {}\n",
      path, m.format_version, m.source_name, m.source_path, m.source_sha256, m.source_bytes, m.domain,
      m.tokenizer_kind, m.vocab_size, m.tokenizer_hash.substr(0, 16), m.tokenizer_spec, m.document_count,
      m.token_count);
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
#ifdef LOCALIST_HAVE_NCCL
  const bool built_nccl = true;
#else
  const bool built_nccl = false;
#endif
  std::cout << fmt::format(
      "localist {}\n  LibTorch        {} ({} intra-op threads)\n  BLAS            {}{}\n"
      "  CUDA            built {}, {} device(s) visible\n  NCCL            built {}\n"
      "  launcher        {} (rank {} of {}, local rank {} of {})\n",
      LOCALIST_VERSION, t.torch_version, t.intra_op_threads, t.blas_library.empty() ? "not loaded" : t.blas_library,
      t.blas_is_reference ? "  <- reference BLAS: slow, run tools/setup.sh" : "", built_cuda ? "yes" : "no",
      t.cuda_devices, built_nccl ? "yes" : "no", env.launcher, env.rank, env.world_size, env.local_rank,
      env.local_size);
  return kExitOk;
}

std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

int cli_main(int argc, char** argv) {
  CLI::App app{"localist: train Localist LLMs whose locality is set by one dial (docs/ for the method)", "localist"};
  app.set_version_flag("--version", std::string(LOCALIST_VERSION));
  app.require_subcommand(1);

  std::string config, checkpoint, prompt, dial = "0", resume, inspect_path, out_dir;
  bool force = false, dry_run = false, show_attention = false;
  int world_size = 0;
  double temperature = 1.0;
  int top_k = 0, max_tokens = 200;

  auto* prepare = app.add_subcommand("prepare", "Turn the config's text sources into HDF5 token shards");
  prepare->add_option("config", config, "Run config (YAML)")->required();
  prepare->add_flag("--force", force, "Rebuild shards even when they are up to date");

  auto* train = app.add_subcommand("train", "Train a localist model from a config");
  train->add_option("config", config, "Run config (YAML)")->required();
  train->add_flag("--dry-run", dry_run, "Check config and data, write the effective config, do not train");
  train->add_option("--world-size", world_size, "With --dry-run: check the config for this many ranks")
      ->check(CLI::Range(1, 1 << 20));
  train->add_option("--resume", resume, "Resume: 'auto' (newest complete checkpoint in the run dir) or a path");

  auto* eval = app.add_subcommand("eval", "Evaluate a checkpoint over dial values (sweep table, CSV, JSON, plot)");
  eval->add_option("--checkpoint", checkpoint, "Checkpoint directory")->required();
  eval->add_option("--dial", dial, "Dial values: 0.6, a list 0,0.5,1 or a sweep 0:1:0.1");
  eval->add_option("--out", out_dir, "Directory for the sweep table (default: the run directory)");

  auto* generate = app.add_subcommand("generate", "Sample text from a checkpoint at a chosen dial");
  generate->add_option("--checkpoint", checkpoint, "Checkpoint directory")->required();
  generate->add_option("--prompt", prompt, "Prompt text")->required();
  generate->add_option("--dial", dial, "Locality dial in [0, 1]");
  generate->add_option("--temperature", temperature, "Sampling temperature (> 0)")->check(CLI::Range(1e-6, 100.0));
  generate->add_option("--top-k", top_k, "Sample among the k most likely tokens (0: all)")->check(CLI::Range(0, 1 << 24));
  generate->add_option("--max-tokens", max_tokens, "Tokens to generate")->check(CLI::Range(1, 1 << 20));
  generate->add_flag("--show-attention", show_attention, "Print each token's block and top attended positions");

  auto* inspect = app.add_subcommand("inspect", "Describe a token shard (or, later, a checkpoint)");
  inspect->add_option("path", inspect_path, "Token shard file or checkpoint directory")->required();

  auto* info = app.add_subcommand("info", "Print build and runtime facts: LibTorch, BLAS, CUDA, NCCL, launcher");

  std::string verb = "localist";
  try {
    app.parse(argc, argv);
    for (auto* sub : app.get_subcommands()) verb = "localist " + sub->get_name();
    if (prepare->parsed()) return run_prepare(config, force);
    if (train->parsed()) return run_train(config, dry_run, world_size, resume);
    if (eval->parsed()) {
      dial_arg_parse(dial);
      not_available("eval", "the localist model and trainer (issue #3)");
    }
    if (generate->parsed()) {
      if (dial_arg_parse(dial).size() != 1) throw ConfigError("--dial: generate takes one dial value");
      not_available("generate", "the localist model and trainer (issue #3)");
    }
    if (inspect->parsed()) return run_inspect(inspect_path);
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
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s (please report this with the command you ran)\n", verb.c_str(),
                 one_line(e.what()).c_str());
    return kExitFailure;
  }
  return kExitFailure;
}

}  // namespace localist
