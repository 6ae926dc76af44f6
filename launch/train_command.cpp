// SPDX-License-Identifier: Apache-2.0
// train_command.cpp: see train_command.h.
#include "launch/train_command.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

#include "checkpoint/checkpoint.h"
#include "checkpoint/hf_import.h"
#include "comm/launch_env.h"
#include "comm/mpi_communicator.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/logging.h"
#include "core/stop_signal.h"
#include "data/batch_reader.h"
#include "data/byte_tokenizer.h"
#include "launch/job_end.h"
#include "launch/text_preview.h"
#include "model/rules.h"
#include "run/torch_runtime.h"
#include "run/train_run.h"

namespace localist {
namespace fs = std::filesystem;
namespace {

void warn_if_slow_blas() {
  const TorchRuntimeInfo info = torch_runtime_info();
  if (info.blas_is_reference) {
    spdlog::warn(
        "the fused kernels call the reference BLAS ({}), ~37x slower than MKL or OpenBLAS; build against "
        "the LibTorch 2.11 wheel (tools/setup.sh), whose libtorch_cpu provides MKL (docs/install.md)",
        info.blas_library);
  }
}

// Rank 0's summary of a finished (or already complete) run.
void print_summary(const RunConfig& cfg, const TrainSummary& s) {
  if (s.already_complete) {
    std::cout << fmt::format(
        "'{}' is already complete: its checkpoint is at step {} and train.steps is {}; nothing "
        "was trained (raise train.steps to continue)",
        cfg.run.name, s.steps, cfg.train.steps);
    if (s.last_logged_step >= 0) {
      std::cout << fmt::format("; last logged step {}: loss {:.4f} (ce {:.4f} nats)", s.last_logged_step, s.final_loss,
                               s.final_ce);
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
}

// The run itself: MPI on several ranks, train_run, the job's end, the summary.
int train(const TrainArgs& a, const RunConfig& cfg, const std::string& effective, const LaunchEnv& env, int world,
          int rank, std::shared_ptr<Communicator>& world_comm) {
  TrainPlan plan = train_plan_from_config(cfg, effective, a);
  plan.local_rank = env.local_rank;
  plan.local_ranks = env.local_size;
  JobEndPlan end;
  if (world > 1) {
    const MpiWorld w = mpi_world(env, cfg.distributed.startup_timeout_s);
    world_comm = w.world;
    plan.world = world_comm;
    plan.local_rank = w.local_rank;  // MPI's view of the node (the launcher's may be absent)
    plan.local_ranks = static_cast<int>(w.node_peers.size()) + 1;
    end.local_rank = w.local_rank;
    end.world_size = world;
    end.node_peers = w.node_peers;
    end.timeout_s = cfg.distributed.timeout_s;
  }
  const TrainSummary s = train_run(plan);
  plan.world.reset();
  if (world_comm) {
    end.world = std::move(world_comm);
    job_end(std::move(end));  // returns only when every rank arrived and finalised
  }
  if (s.stop_signal != 0) {
    if (rank == 0) {
      std::cout << fmt::format(
          "stopped '{}' by signal {} before step {}; checkpoint: {}\n"
          "continue with: localist train {} --resume auto\n",
          cfg.run.name, s.stop_signal, s.steps, s.checkpoint, a.config);
    }
    logging_shutdown();
    return kExitStopped;
  }
  if (rank != 0) return kExitOk;
  print_summary(cfg, s);
  logging_shutdown();
  return kExitOk;
}

// A dry run's report: the mesh, the batch, the sources and rank `rank`'s first row.
int dry_run(const TrainArgs& a, const RunConfig& cfg, const BatchReader& reader, const LaunchEnv& env, int world,
            int rank, const fs::path& run_dir) {
  const int64_t bp = cfg.distributed.block_parallel, dp = world / bp;
  const int dp_rank = static_cast<int>(rank / bp);
  spdlog::info("dry run of '{}' ({}): world {} = dp {} x bp {}, launcher {}", cfg.run.name, a.config, world, dp, bp,
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
                 text_preview(tok.decode(b.tokens.data(), 80), 80));
  }
  spdlog::info("config and data are valid; effective config: {}", (run_dir / "config.effective.yaml").string());
  logging_shutdown();
  return kExitOk;
}

}  // namespace

TrainPlan train_plan_from_config(const RunConfig& cfg, const std::string& effective, const TrainArgs& a) {
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
  plan.resume = a.resume;
  plan.recruitment = cfg.recruitment;
  plan.pool = cfg.pool;
  plan.check_resume = [effective, override_schedules = a.override_schedules](const std::string& checkpoint_yaml) {
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
    if (!c.schedules.empty() && !override_schedules) {
      throw ConfigError("--resume: " + list(c.schedules) +
                        " differ(s) from the checkpoint's config; pass "
                        "--override-schedules to continue with this config's schedules, or restore them");
    }
    if (!c.schedules.empty()) spdlog::warn("--override-schedules: using this config's {}", list(c.schedules));
  };
  return plan;
}

int run_train(const TrainArgs& a, std::shared_ptr<Communicator>& world_comm) {
  // From the first line on, not from the training loop: a preemption signal during start-
  // up (config, data checks, MPI start) is then honoured at the first step boundary
  // instead of ending the process. (Before main, while LibTorch loads, it still ends it.)
  if (!a.dry_run) stop_signal_install();
  const LaunchEnv env = launch_env_detect();
  const int world = a.world_size > 0 ? a.world_size : env.world_size;
  if (a.world_size > 0 && !a.dry_run) throw ConfigError("--world-size only applies to --dry-run");
  if (a.world_size == 0) launch_env_require_mpi(env);  // also in a dry run: it checks the launch line
  const RunConfig cfg = run_config_load(a.config, world, a.overrides);
  // Check the data and the rules file before anything is written, so a bad run leaves
  // no run directory.
  const BatchReader reader(cfg.data, cfg.model.context, static_cast<uint64_t>(cfg.run.seed), cfg.train.global_batch);
  if (!cfg.train.rules.empty()) RuleSet::load(cfg.train.rules, cfg.model.k_max);
  if (!cfg.model.init_from.path.empty()) {
    hf_import_check(cfg.model, reader.shards().front()->meta().vocab_size, cfg.model.init_from.path);
  }
  if (!a.resume.empty() && a.resume != "auto") checkpoint_resolve(a.resume);  // a wrong path writes nothing
  const int rank = a.world_size > 0 ? 0 : env.rank;

  const fs::path run_dir(cfg.run.dir);
  std::error_code ec;
  fs::create_directories(run_dir / "logs", ec);
  if (ec) throw Error(cfg.run.dir + ": cannot create run directory: " + ec.message());
  logging_init({rank, world, cfg.run.log_level, (run_dir / "logs").string()});
  warn_if_slow_blas();
  const std::string effective = run_config_to_yaml(cfg);
  if (rank == 0) write_file_atomic((run_dir / "config.effective.yaml").string(), effective);
  if (!a.dry_run) return train(a, cfg, effective, env, world, rank, world_comm);
  return dry_run(a, cfg, reader, env, world, rank, run_dir);
}

}  // namespace localist
