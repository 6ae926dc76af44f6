// trainer.cpp: see trainer.h.
#include "trainer/trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <torch/cuda.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/mix64.h"
#include "core/stop_signal.h"
#include "core/metrics_writer.h"
#include "core/progress_line.h"
#include "data/batch_reader.h"
#include "data/prepare.h"
#include "data/tokenizer.h"
#include "model/localist_model.h"
#include "model/rules.h"
#include "trainer/block_parallel.h"
#include "trainer/evaluate.h"
#include "trainer/grad_sync.h"
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_writer.h"
#include "trainer/recruiter.h"
#include "trainer/torch_runtime.h"

namespace localist {
namespace {

using Clock = std::chrono::steady_clock;

int64_t file_mtime_ns(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

// The λ used for evaluation during and after training: the schedule's value at that
// step, except for dial-conditioned training (uniform), evaluated at the range's middle.
std::vector<double> eval_dial(const TrainConfig& t, int64_t step, int64_t layers, uint64_t seed) {
  if (t.dial.kind == "uniform") return std::vector<double>(layers, 0.5 * (t.dial.lo + t.dial.hi));
  return t.dial.at(step, layers, seed);
}

}  // namespace

FaultInjection fault_injection_from_env() {
  FaultInjection f;
  const char* v = std::getenv("LOCALIST_TEST_FAULT");
  if (!v || !*v) return f;
  char kind[16] = {0}, at[32] = {0};
  const int n = std::sscanf(v, "%15[a-z]:rank=%d:step=%lld:at=%31[a-z-]", kind, &f.rank,
                            reinterpret_cast<long long*>(&f.step), at);
  f.kind = kind;
  f.at = at;
  const bool ok = (n == 3 && (f.kind == "stall" || f.kind == "kill" || f.kind == "signal")) ||
                  (n == 4 && f.kind == "ckptkill");
  if (!ok) {
    throw ConfigError(std::string("LOCALIST_TEST_FAULT='") + v +
                      "': expected stall|kill|signal:rank=R:step=S or ckptkill:rank=R:step=S:at=POINT");
  }
  return f;
}

int64_t forced_remap_step_from_env() {
  const char* v = std::getenv("LOCALIST_TEST_REMAP_STEP");
  if (!v || !*v) return -1;
  char* end = nullptr;
  const long long step = std::strtoll(v, &end, 10);
  if (*end != '\0' || step < 0) throw ConfigError(std::string("LOCALIST_TEST_REMAP_STEP='") + v + "': expected a step");
  return step;
}

void fault_maybe_trigger(const FaultInjection& f, int rank, int64_t step) {
  if ((f.kind != "stall" && f.kind != "kill" && f.kind != "signal") || f.rank != rank || f.step != step) return;
  if (f.kind == "signal") {
    spdlog::warn("LOCALIST_TEST_FAULT: rank {} sends itself SIGUSR1 at step {}", rank, step);
    std::raise(SIGUSR1);
    return;
  }
  spdlog::warn("LOCALIST_TEST_FAULT: rank {} {} at step {}", rank, f.kind == "kill" ? "killed" : "stalls", step);
  if (f.kind == "kill") std::raise(SIGKILL);
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

std::string trainer_device_name(const std::string& requested) {
  if (requested == "cpu") return "cpu";
  const bool cuda = torch::cuda::is_available();
  if (requested == "cuda" && !cuda) {
    throw ConfigError("train.device: cuda requested but no CUDA device is visible (or LibTorch was built without CUDA)");
  }
  return cuda ? "cuda" : "cpu";
}

TrainSummary train_run(const TrainPlan& p) {
  const auto t_start = Clock::now();
  stop_signal_install();  // SIGTERM/SIGUSR1 from here on: checkpoint at the next step boundary
  const TrainConfig& tc = p.train;
  const std::shared_ptr<Communicator> world = p.world ? p.world : local_communicator();
  // Mesh: ranks r = dp_rank * bp + bp_rank. The bp group holds one replica; the dp group
  // joins the ranks that hold the same blocks in different replicas.
  const int bp = static_cast<int>(p.block_parallel);
  if (bp < 1 || world->size() % bp != 0) {
    throw ConfigError("distributed.block_parallel: " + std::to_string(bp) + " does not divide the world size " +
                      std::to_string(world->size()));
  }
  const int dp_rank = world->rank() / bp, dp_size = world->size() / bp, bp_rank = world->rank() % bp;
  std::shared_ptr<Communicator> dp_group = world, bp_group;
  if (bp > 1) {
    dp_group = world->split(bp_rank, dp_rank, "dp[" + std::to_string(bp_rank) + "]");
    bp_group = world->split(dp_rank, bp_rank, "bp[" + std::to_string(dp_rank) + "]");
  }
  const bool lead = world->rank() == 0;  // rank 0 logs progress, writes metrics, evaluates and checkpoints
  world->set_timeout(p.startup_timeout_s);
  torch_set_threads(static_cast<int>(tc.threads));
  at::manual_seed(p.seed);
  const at::Device device(trainer_device_name(tc.device));
  const bool bf16 = device.is_cuda() && tc.precision != "fp32";
  if (tc.precision == "bf16" && !device.is_cuda()) {
    spdlog::warn("train.precision: bf16 autocast is used on CUDA only; training in fp32 on the CPU");
  }

  // Resume: the checkpoint is found and verified first (a damaged one fails before any
  // other work); weights, then the optimizer state once the optimizer and map exist.
  if (lead) checkpoint_clean_partial(p.run_dir);
  world->barrier("checkpoint clean-up");
  std::unique_ptr<CheckpointContents> resumed;
  if (!p.resume.empty()) {
    resumed = p.resume == "auto" ? checkpoint_read_auto(p.run_dir, world)
                                 : std::make_unique<CheckpointContents>(checkpoint_read(checkpoint_resolve(p.resume)));
    if (!resumed) {
      if (lead) spdlog::info("--resume auto: no complete checkpoint in {}/checkpoints; starting at step 0", p.run_dir);
    } else if (p.check_resume) {
      p.check_resume(resumed->config_yaml);
    }
  }

  // Data and tokenizer; the tokenizer must be the one the shards were made with.
  const BatchReader reader(p.data, p.model.context, p.seed, tc.global_batch);
  std::vector<std::string> training_files;
  for (const auto& s : p.data.sources) {
    if (s.train) training_files.push_back(s.path);
  }
  const std::string sp_model = trained_tokenizer_path(p.data);
  const auto tok = tokenizer_create(p.data.tokenizer, training_files, sp_model);
  const auto& shard_meta = reader.shards().front()->meta();
  if (tok->hash() != shard_meta.tokenizer_hash) {
    throw Error(reader.shards().front()->path() + ": made with another tokenizer than the config's; re-run "
                "`localist prepare --force`");
  }
  const std::vector<std::string> token_texts = tok->token_texts();
  EvalInputs eval_in;
  eval_in.token_texts = &token_texts;
  for (const auto& t : token_texts) eval_in.token_bytes.push_back(static_cast<int64_t>(t.size()));
  eval_in.pad_id = tok->pad_id();
  eval_in.device = device;
  eval_in.batch = tc.micro_batch;

  bool have_eval = false;
  EvalSet eval_set;
  try {
    eval_set = eval_set_load(p.data, p.model.context, tc.eval_windows);
    have_eval = true;
  } catch (const ConfigError& e) {
    if (lead) spdlog::warn("no held-out evaluation: {}", e.what());
  }

  auto model = std::make_shared<LocalistModel>(p.model, tok->vocab_size(), p.seed);
  if (world->size() > 1) {
    // Identical replicas by construction (same seed); the broadcast makes it a guarantee.
    at::NoGradGuard no_grad;
    for (auto& t : model->parameters()) world->broadcast(t, 0, "initial parameters");
  }
  if (resumed) {
    if (resumed->meta.tokenizer_hash != tok->hash()) {
      throw Error(resumed->dir + ": trained with another tokenizer than the config's (" + resumed->meta.tokenizer_spec + ")");
    }
    checkpoint_load_model(*resumed, *model);
    // The generators continue where they were when the world size is the same (training
    // itself draws only explicitly seeded numbers, so results never depend on this).
    if (resumed->rng_cpu.defined() && resumed->rng_cpu.size(0) == world->size()) {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(resumed->rng_cpu[world->rank()].clone());
    }
    if (lead) {
      spdlog::info("resuming from {} (step {}, {} tokens seen)", resumed->dir, resumed->meta.step,
                   resumed->meta.tokens_seen);
    }
  }
  const int64_t start_step = resumed ? resumed->meta.step : 0;
  model->to(device);
  model->train();
  // Per slot: 1 when the block is switched on (recruitment changes it during training).
  auto active_mask = [&] {
    std::vector<uint8_t> mask(p.model.k_max, 0);
    for (int64_t slot : model->active_slots()) mask[slot] = 1;
    return mask;
  };
  std::unique_ptr<BlockParallel> blocks;  // bp > 1 only
  std::vector<at::Tensor> router_params;
  if (bp > 1) {
    // A resumed map keeps its owners where the mesh allows; otherwise the planner re-places.
    blocks = std::make_unique<BlockParallel>(
        bp_group, *model, resumed ? block_map_plan(resumed->map, active_mask(), bp) : block_map_initial(active_mask(), bp));
    for (auto& l : model->layers) router_params.push_back(l->router_w);
    if (lead) spdlog::info("block map {}", blocks->map().describe());
  }
  const auto& ac = model->anchor_code();
  spdlog::info("model: {} parameters, {} layers, width {}, {} of {} blocks active x {} heads of {}, anchors {} "
               "(coherence {:.3f}, Welch bound {:.3f}), device {}{}",
               model->parameter_count(), p.model.n_layers, p.model.d_model, p.model.k_initial, p.model.k_max,
               p.model.heads_per_block, p.model.head_dim, ac.kind, ac.coherence, ac.welch_bound, device.str(),
               bf16 ? " (bf16 autocast)" : "");

  std::vector<at::Tensor> decay = model->decay_parameters(), no_decay = model->no_decay_parameters();
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto opts = [&](double wd) {
    auto o = std::make_unique<torch::optim::AdamWOptions>(tc.lr.lr);
    o->betas({tc.beta1, tc.beta2}).weight_decay(wd).eps(1e-8);
    return o;
  };
  groups.emplace_back(decay, opts(tc.weight_decay));
  groups.emplace_back(no_decay, opts(tc.decay_embeddings ? tc.weight_decay : 0.0));
  torch::optim::AdamW optimizer(groups);
  std::vector<at::Tensor> all_params = decay;
  all_params.insert(all_params.end(), no_decay.begin(), no_decay.end());
  const MomentsOf adam_moments = adamw_moments(optimizer);
  std::unique_ptr<Recruiter> recruiter;  // created below, once the data reader exists
  const int64_t resumed_epoch = resumed ? resumed->map.epoch : 0;
  auto current_map = [&] {
    if (blocks) return blocks->map();
    BlockMap m = block_map_initial(active_mask(), 1);
    m.epoch = recruiter ? recruiter->map_epoch() : resumed_epoch;
    return m;
  };
  if (resumed) checkpoint_load_optimizer(*resumed, *model, optimizer, current_map(), bp_rank);

  RuleSet rules;         // the rules file's
  RuleSet active_rules;  // those with the recruited domains' routes in front (what training applies)
  bool rules_changed = true;  // active_rules must be rebuilt (file reloaded, or a recruitment round)
  int64_t rules_mtime = -1;
  auto reload_rules = [&] {
    if (tc.rules.empty()) return;
    const int64_t m = file_mtime_ns(tc.rules);
    if (m == rules_mtime) return;
    rules = RuleSet::load(tc.rules, p.model.k_max);
    rules_mtime = m;
    rules_changed = true;
    spdlog::info("rules: loaded {} rule(s) from {}", rules.rules().size(), tc.rules);
  };

  std::vector<std::string> source_domain;
  for (const auto& s : p.data.sources) {
    if (s.train) source_domain.push_back(s.domain);
  }
  if (p.recruitment.enabled) {
    RecruiterSetup rs;
    rs.config = p.recruitment;
    rs.model = model.get();
    rs.optimizer = &optimizer;
    rs.reader = &reader;
    rs.world = world;
    rs.place = [&](int64_t slot) -> int32_t {
      if (!blocks) return 0;
      // Under block parallelism the planner places the new block on the least-loaded rank
      // (rebalancing past the threshold); parameters and moments move point to point.
      const BlockMap next = block_map_plan(blocks->map(), active_mask(), bp);
      const int64_t bytes = blocks->apply(next, adam_moments);
      if (lead) spdlog::info("block map {} applied ({} bytes moved)", next.describe(), bytes);
      return next.owner[slot];
    };
    rs.source_domains = source_domain;
    rs.rules = &rules;
    rs.token_texts = &token_texts;
    rs.pad_id = tok->pad_id();
    rs.seed = p.seed;
    rs.global_batch = tc.global_batch, rs.micro_batch = tc.micro_batch, rs.total_steps = tc.steps;
    rs.beta1 = tc.beta1, rs.beta2 = tc.beta2;
    rs.device = device;
    recruiter = std::make_unique<Recruiter>(rs);
    if (resumed) {
      recruiter->restore(resumed->state.value("recruitment", nlohmann::json()), resumed->recruitment_log);
      recruiter->restore_epoch(resumed_epoch);
    }
  }
  std::unique_ptr<MetricsWriter> metrics;
  if (lead) metrics = std::make_unique<MetricsWriter>((std::filesystem::path(p.run_dir) / "metrics.jsonl").string());
  ProgressLine progress(lead);
  const int64_t L = p.model.n_layers, T = p.model.context;
  if (tc.global_batch % (static_cast<int64_t>(dp_size) * tc.micro_batch) != 0) {
    throw ConfigError("train.micro_batch: " + std::to_string(tc.micro_batch) + " does not divide the per-rank batch " +
                      std::to_string(tc.global_batch / dp_size));
  }
  const int64_t accum = tc.global_batch / dp_size / tc.micro_batch;  // micro-batches per rank
  TrainSummary summary;
  auto run_eval = [&](int64_t step) {
    const EvalMetrics m = evaluate(*model, eval_set, eval_dial(tc, step, L, p.seed), &active_rules, eval_in);
    auto j = eval_metrics_json(m);
    j["event"] = "eval";
    j["step"] = step;
    metrics->write(j);
    progress.finish();
    spdlog::info("eval step {}: ce {:.4f} nats, {:.3f} bits/byte, ppl {:.3f}, acc {:.3f}, attention entropy {:.3f} "
                 "bits, own-block fidelity {:.3f}, largest block share {:.3f}",
                 step, m.ce_nats, m.bits_per_byte, m.perplexity, m.accuracy, m.attn_entropy, m.own_fidelity_mass,
                 m.max_share);
    return m;
  };

  const std::string tokenizer_file = p.data.tokenizer.kind != "sentencepiece" ? ""
                                     : p.data.tokenizer.model.empty() ? sp_model : p.data.tokenizer.model;
  const FaultInjection fault = fault_injection_from_env();
  int64_t last_saved_step = resumed ? start_step : -1;
  std::string last_saved_dir = resumed ? resumed->dir : "";
  CheckpointWriter checkpoints(tc.async_checkpoint);
  auto commit_pending = [&] {
    if (!checkpoints.pending()) return;
    last_saved_step = checkpoints.pending_step();
    last_saved_dir = checkpoints.finish();
  };
  // Collective: every rank calls it at the same step. Periodic checkpoints may be
  // asynchronous (committed at a later step boundary); the others are committed at once.
  auto save_checkpoint = [&](int64_t step, bool periodic) {
    CheckpointWrite w;
    w.run_dir = p.run_dir;
    w.world = world;
    w.model = model.get();
    w.optimizer = &optimizer;
    w.map = current_map();
    w.dp_rank = dp_rank;
    w.bp_rank = bp_rank;
    w.meta = CheckpointMeta{step, step * tc.global_batch * T, tok->vocab_size(), p.seed,
                            tok->kind(), tok->hash(), tok->spec()};
    w.config_yaml = p.config_yaml;
    w.tokenizer_model_path = tokenizer_file;
    if (recruiter) w.recruitment_log = recruiter->log();
    w.keep_last = tc.keep_checkpoints;
    w.keep_every = tc.keep_checkpoint_every;
    if (fault.kind == "ckptkill" && fault.rank == world->rank() && fault.step == step) {
      w.on_point = [&fault](const std::string& point) {
        if (point != fault.at) return;
        spdlog::warn("LOCALIST_TEST_FAULT: killed inside the checkpoint write at '{}'", point);
        std::raise(SIGKILL);
      };
    }
    // The data position is the step: the sample order is a pure function of (seed, step).
    w.state = {{"data_position", {{"next_step", step}, {"global_batch", tc.global_batch}, {"seed", p.seed}}},
               {"schedules", {{"lr", tc.lr.at(step)}, {"dial", tc.dial.at(step, L, p.seed)}}},
               {"mesh", {{"world", world->size()}, {"block_parallel", bp}}}};
    if (recruiter) w.state["recruitment"] = recruiter->state();
    checkpoints.start(w);
    if (!periodic || !tc.async_checkpoint) commit_pending();
  };

  // Gradients are summed over the data-parallel ranks while backward runs (hooks).
  std::unique_ptr<GradientSync> grad_sync;
  if (dp_size > 1) {
    grad_sync = std::make_unique<GradientSync>(dp_group, model->parameters(),
                                               static_cast<int64_t>(p.bucket_mb * 1024 * 1024));
    if (lead) {
      spdlog::info("gradient sync: {} bucket(s), {:.2f} MB per step over {} data-parallel ranks",
                   grad_sync->bucket_count(), grad_sync->bytes() / 1e6, dp_size);
    }
  }
  const int64_t forced_remap_step = forced_remap_step_from_env();
  if (start_step >= tc.steps) {
    if (lead) spdlog::info("the checkpoint is at step {}, train.steps is {}: nothing left to train", start_step, tc.steps);
    summary.steps = start_step;
    summary.checkpoint = resumed->dir;
    return summary;
  }
  for (int64_t step = start_step; step < tc.steps; ++step) {
    const auto t0 = Clock::now();
    fault_maybe_trigger(fault, world->rank(), step);
    // A stop signal on any rank (also one received during evaluation or start-up) is
    // agreed on by all at this step boundary: checkpoint the state before this step, exit.
    // The same 16-byte all-reduce tells whether every rank's background checkpoint write
    // is done, so the commit happens at the same boundary everywhere.
    auto flags = at::tensor(std::vector<int64_t>{stop_signal_pending(), checkpoints.local_done() ? 0 : 1}, at::kLong);
    if (world->size() > 1) world->all_reduce(flags, ReduceOp::kMax, "stop flag (step " + std::to_string(step) + ")");
    const int64_t stop_signal = flags[0].item<int64_t>();
    if (flags[1].item<int64_t>() == 0) commit_pending();
    if (stop_signal != 0) {
      progress.finish();
      commit_pending();
      // The checkpoint of this step may exist already (resumed from, or just written):
      // never rewrite a committed one.
      if (step != last_saved_step) save_checkpoint(step, false);
      summary.checkpoint = last_saved_dir;
      summary.steps = step;
      summary.stop_signal = static_cast<int>(stop_signal);
      summary.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
      spdlog::warn("stopped by signal {} before step {}: checkpoint {}; continue with --resume auto",
                   summary.stop_signal, step, summary.checkpoint);
      return summary;
    }
    if (blocks && step == forced_remap_step) {
      // Test hook: every block moves to the next BP rank, as a recruitment's re-placement would.
      BlockMap next = blocks->map();
      ++next.epoch;
      for (auto& o : next.owner) o = o < 0 ? o : (o + 1) % bp;
      const int64_t bytes = blocks->apply(next, adam_moments);
      spdlog::info("block map {} applied at step {} ({} bytes sent)", next.describe(), step, bytes);
    }
    reload_rules();
    const double lr = tc.lr.at(step);
    if (recruiter && recruiter->due(step)) {
      const nlohmann::json rec = recruiter->round(step, tc.dial.at(step, L, p.seed), lr);
      if (metrics) metrics->write(rec);
      rules_changed = true;
    }
    if (rules_changed) {
      active_rules = recruiter ? rules.with_domain_routes(recruiter->domain_routes()) : rules;
      rules_changed = false;
    }
    for (auto& g : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    const std::vector<double> dial = tc.dial.at(step, L, p.seed);
    const bool log_step = step % tc.log_every == 0 || step + 1 == tc.steps;

    const TokenBatch batch = reader.read(step, dp_rank, dp_size);
    const auto all = at::tensor(std::vector<int64_t>(batch.tokens.begin(), batch.tokens.end()), at::kLong)
                         .view({batch.rows, batch.cols});
    optimizer.zero_grad();
    double ce_sum = 0, loss_sum = 0, omega_sum = 0, mi_sum = 0, share_max = 0;
    for (int64_t m = 0; m < accum; ++m) {
      const auto rows = all.narrow(0, m * tc.micro_batch, tc.micro_batch);
      const auto inputs = rows.narrow(1, 0, T), targets = rows.narrow(1, 1, T);
      RuleMasks masks;
      if (!active_rules.empty()) {
        std::vector<std::string> doms;
        for (int64_t i = m * tc.micro_batch; i < (m + 1) * tc.micro_batch; ++i) {
          doms.push_back(recruiter ? recruiter->training_domain(step, batch.source[i], batch.start[i])
                                   : source_domain[batch.source[i]]);
        }
        masks = active_rules.masks(inputs, doms, token_texts, device);
      }
      // Dropout draws from a stream fixed by (seed, step, micro-batch of the global batch),
      // so the same micro-batch sees the same masks on any number of ranks.
      at::manual_seed(mix64(p.seed ^ mix64(static_cast<uint64_t>(step) * 1000003u +
                                           static_cast<uint64_t>(dp_rank * accum + m))));
      ForwardOptions fo;
      fo.dial = dial;
      fo.rules = active_rules.empty() ? nullptr : &masks;
      fo.penalties = std::any_of(dial.begin(), dial.end(), [](double v) { return v > 0; });
      fo.trace = log_step && m == 0 && bp == 1;  // traces need every block on one rank
      fo.shard = blocks ? &blocks->shard() : nullptr;
      if (bf16) {
        at::autocast::set_enabled(true);
        at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      }
      const ForwardResult r = model->forward(inputs.to(device), fo);
      if (bf16) at::autocast::set_enabled(false);
      const auto logits = r.logits.to(at::kFloat);
      const auto ce = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), targets.to(device).reshape({-1}),
                                             {}, at::Reduction::Mean, tok->pad_id());
      at::Tensor pen = at::zeros({}, logits.options());
      for (int64_t l = 0; l < static_cast<int64_t>(r.omega.size()); ++l) {
        pen = pen + dial[l] * (tc.penalty_mu * r.omega[l].to(at::kFloat) - tc.penalty_nu * r.mutual_info[l].to(at::kFloat));
      }
      pen = pen / static_cast<double>(L);
      // Every micro-batch of the global batch weighs the same, on any number of ranks.
      const auto loss = (ce + pen) / static_cast<double>(accum * dp_size);
      if (grad_sync && m + 1 == accum) grad_sync->arm("gradients (step " + std::to_string(step) + ")");
      loss.backward();
      ce_sum += ce.item<double>() / accum;
      loss_sum += loss.item<double>() * dp_size;
      for (int64_t l = 0; l < static_cast<int64_t>(r.omega.size()); ++l) {
        omega_sum += r.omega[l].item<double>() / (L * accum);
        mi_sum += r.mutual_info[l].item<double>() / (L * accum);
      }
      if (fo.trace) {
        for (const auto& tr : r.traces) {
          const auto shares = at::one_hot(tr.hard.flatten(), r.active_blocks.size(0)).to(at::kDouble).mean(0);
          share_max = std::max(share_max, shares.max().item<double>());
        }
      }
    }
    double comm_ms = 0;
    if (world->size() > 1) {
      const auto c0 = Clock::now();
      if (grad_sync) grad_sync->finish();
      // The router is used through every rank's blocks: its partial gradients (already
      // summed over the data-parallel ranks) add up over the replica's group.
      for (auto& r : router_params) {
        at::Tensor g = r.grad();  // shares the gradient's storage
        if (g.defined()) bp_group->all_reduce(g, ReduceOp::kSum, "router gradient");
      }
      auto stats = at::tensor(std::vector<double>{loss_sum, ce_sum, omega_sum, mi_sum}, at::kDouble);
      world->all_reduce(stats, ReduceOp::kAvg, "loss statistics");
      auto shares = at::tensor(std::vector<double>{share_max}, at::kDouble);
      world->all_reduce(shares, ReduceOp::kMax, "block shares");
      loss_sum = stats[0].item<double>(), ce_sum = stats[1].item<double>();
      omega_sum = stats[2].item<double>(), mi_sum = stats[3].item<double>(), share_max = shares[0].item<double>();
      // What backward did not hide (includes waiting for the slowest rank).
      comm_ms = std::chrono::duration<double, std::milli>(Clock::now() - c0).count();
    }
    if (!std::isfinite(loss_sum)) {
      throw Error(fmt::format("training diverged at step {}: loss is {} (lower train.lr or raise warmup_steps)", step,
                              loss_sum));
    }
    // Global gradient norm of the whole model: block parameters are held in parts by the
    // ranks of a replica (other ranks' rows are zero here), so their squares add up over
    // the block-parallel group; everything else is replicated and counted once.
    double shared_sq = 0, block_sq = 0;
    for (const auto& t : all_params) {
      if (!t.grad().defined()) continue;
      const double sq = t.grad().to(at::kDouble).pow(2).sum().item<double>();
      (blocks && blocks->is_block_param(t) ? block_sq : shared_sq) += sq;
    }
    if (bp > 1) {
      auto sq = at::tensor(std::vector<double>{block_sq}, at::kDouble);
      bp_group->all_reduce(sq, ReduceOp::kSum, "gradient norm");
      block_sq = sq.item<double>();
    }
    const double grad_norm = std::sqrt(shared_sq + block_sq);
    if (tc.grad_clip > 0 && grad_norm > tc.grad_clip) {
      at::NoGradGuard no_grad;
      const double scale = tc.grad_clip / (grad_norm + 1e-6);
      for (auto& t : all_params) {
        if (t.grad().defined()) t.grad().mul_(scale);
      }
    }
    optimizer.step();
    // Each rank's copy of the blocks it does not own drifts (weight decay on zero
    // gradients); the owners' values are re-assembled on every rank of the replica so
    // that rank 0 evaluates and checkpoints the true model.
    if (blocks) blocks->reassemble();
    if (step == start_step) world->set_timeout(p.timeout_s);  // start-up is over
    summary.final_loss = loss_sum;
    summary.final_ce = ce_sum;

    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    const double tok_s = tc.global_batch * T / (ms / 1000.0);  // over all ranks
    progress.update(fmt::format("step {}/{}  loss {:.4f}  {:.3f} bits/token  dial {:.2f}  omega {:.3f}  I {:.3f}  "
                                "lr {:.2e}  {:.0f} tok/s",
                                step + 1, tc.steps, loss_sum, ce_sum / std::log(2.0), mean(dial), omega_sum, mi_sum, lr,
                                tok_s));
    if (log_step && lead) {
      metrics->write({{"event", "step"}, {"step", step}, {"loss", loss_sum}, {"ce_nats", ce_sum},
                     {"bits_per_token", ce_sum / std::log(2.0)}, {"dial", dial}, {"omega", omega_sum},
                     {"mutual_info_bits", mi_sum},
                     // Shares need traces, which need every block on one rank: null under bp > 1.
                     {"max_block_share", bp == 1 ? nlohmann::json(share_max) : nlohmann::json(nullptr)},
                     {"active_blocks", model->active_slots().size()}, {"grad_norm", grad_norm}, {"lr", lr},
                     {"tokens_per_s", tok_s}, {"ms_per_step", ms}, {"comm_ms", comm_ms}});
    }
    if (lead && have_eval && tc.eval_every > 0 && (step + 1) % tc.eval_every == 0 && step + 1 < tc.steps) {
      run_eval(step + 1);
    }
    if (tc.checkpoint_every > 0 && (step + 1) % tc.checkpoint_every == 0 && step + 1 < tc.steps) {
      save_checkpoint(step + 1, true);
    }
  }
  progress.finish();
  summary.steps = tc.steps;
  if (lead && have_eval) {
    summary.final_eval = run_eval(tc.steps);
    summary.evaluated = true;
  }
  save_checkpoint(tc.steps, false);
  summary.checkpoint = last_saved_dir;
  if (recruiter && lead) {
    // Overhead of recruitment (probing, candidates, decisions, restores) against the run's
    // wall time; the trials' steps are training and are reported apart.
    const auto& rt = recruiter->times();
    const double wall = std::chrono::duration<double>(Clock::now() - t_start).count();
    const double overhead = rt.statistics + rt.decision + rt.restore;
    spdlog::info("recruitment time: statistics {:.2f} s, decisions {:.2f} s, restores {:.2f} s = {:.2f}% of {:.1f} s; "
                 "trials {:.2f} s ({:.1f}%)", rt.statistics, rt.decision, rt.restore, 100 * overhead / wall, wall,
                 rt.trial, 100 * rt.trial / wall);
    metrics->write({{"event", "recruitment_time"}, {"statistics_s", rt.statistics}, {"decision_s", rt.decision},
                    {"restore_s", rt.restore}, {"trial_s", rt.trial}, {"wall_s", wall}});
  }
  world->barrier("end of training");
  summary.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  spdlog::info("trained {} steps in {:.1f} s; checkpoint {}", tc.steps, summary.seconds, summary.checkpoint);
  return summary;
}

}  // namespace localist
