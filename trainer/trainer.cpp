// trainer.cpp: see trainer.h.
#include "trainer/trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/metrics_writer.h"
#include "core/progress_line.h"
#include "core/stop_signal.h"
#include "trainer/checkpoint.h"
#include "trainer/evaluate.h"
#include "trainer/model_group.h"
#include "recruitment/recruiter.h"
#include "trainer/run_checkpoints.h"
#include "trainer/torch_runtime.h"
#include "trainer/train_loop.h"

namespace localist {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

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

// Resume: the checkpoint is found and verified first (a damaged one fails before any other work).
std::unique_ptr<CheckpointContents> resume_read(const TrainPlan& p, const std::shared_ptr<Communicator>& world) {
  if (world->rank() == 0) checkpoint_clean_partial(p.run_dir);
  world->barrier("checkpoint clean-up");
  if (p.resume.empty()) return nullptr;
  auto resumed = p.resume == "auto" ? checkpoint_read_auto(p.run_dir, world)
                                    : std::make_unique<CheckpointContents>(checkpoint_read(checkpoint_resolve(p.resume)));
  if (!resumed) {
    if (world->rank() == 0) {
      spdlog::info("--resume auto: no complete checkpoint in {}/checkpoints; starting at step 0", p.run_dir);
    }
  } else if (p.check_resume) {
    p.check_resume(resumed->config_yaml);
  }
  return resumed;
}

// The generators continue where they were when the world size is the same (training
// itself draws only explicitly seeded numbers, so results never depend on this).
void resume_generator(const CheckpointContents& c, const Communicator& world) {
  if (!c.rng_cpu.defined() || c.rng_cpu.size(0) != world.size()) return;
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(c.rng_cpu[world.rank()].clone());
}

// Held-out evaluation of a group during and after training (world rank 0).
struct RunEvaluation {
  bool available = false;
  EvalSet set;
  EvalInputs inputs;
  EvalMetrics run(ModelGroup& g, int64_t step, MetricsWriter& metrics, ProgressLine& progress) const {
    const TrainConfig& tc = g.setup.train;
    const EvalMetrics m = evaluate(*g.model, set, eval_dial(tc, step, g.setup.model.n_layers, g.setup.seed),
                                   &g.rules.active(), inputs);
    auto j = eval_metrics_json(m);
    j["event"] = "eval";
    j["step"] = step;
    metrics.write(j);
    progress.finish();
    spdlog::info("eval step {}: ce {:.4f} nats, {:.3f} bits/byte, ppl {:.3f}, acc {:.3f}, attention entropy {:.3f} "
                 "bits, own-block fidelity {:.3f}, largest block share {:.3f}",
                 step, m.ce_nats, m.bits_per_byte, m.perplexity, m.accuracy, m.attn_entropy, m.own_fidelity_mass,
                 m.max_share);
    return m;
  }
};

RunEvaluation run_evaluation(const TrainPlan& p, const ModelGroup& g, bool lead) {
  RunEvaluation e;
  e.inputs.token_texts = &g.token_texts;
  for (const auto& t : g.token_texts) e.inputs.token_bytes.push_back(static_cast<int64_t>(t.size()));
  e.inputs.pad_id = g.tokenizer->pad_id();
  e.inputs.device = g.setup.device;
  e.inputs.batch = p.train.micro_batch;
  try {
    e.set = eval_set_load(p.data, p.model.context, p.train.eval_windows);
    e.available = true;
  } catch (const ConfigError& err) {
    if (lead) spdlog::warn("no held-out evaluation: {}", err.what());
  }
  return e;
}

// The per-step progress line (every rank; shown by the lead) and the metrics record of logged steps.
void report_step(ProgressLine& progress, MetricsWriter* metrics, const ModelGroup& g, int64_t step, const StepStats& s,
                 const std::vector<double>& dial, double lr, double ms, bool log_step) {
  const TrainConfig& tc = g.setup.train;
  const double tok_s = tc.global_batch * g.setup.model.context / (ms / 1000.0);  // over all ranks
  progress.update(fmt::format("step {}/{}  loss {:.4f}  {:.3f} bits/token  dial {:.2f}  omega {:.3f}  I {:.3f}  "
                              "lr {:.2e}  {:.0f} tok/s",
                              step + 1, tc.steps, s.loss, s.ce / std::log(2.0), mean(dial), s.omega, s.mutual_info, lr,
                              tok_s));
  if (!log_step || !metrics) return;
  const bool shares = !g.blocks;  // shares need traces, which need every block on one rank: null under bp > 1
  metrics->write({{"event", "step"}, {"step", step}, {"loss", s.loss}, {"ce_nats", s.ce},
                  {"bits_per_token", s.ce / std::log(2.0)}, {"dial", dial}, {"omega", s.omega},
                  {"mutual_info_bits", s.mutual_info},
                  {"max_block_share", shares ? nlohmann::json(s.max_share) : nlohmann::json(nullptr)},
                  {"active_blocks", g.model->active_slots().size()}, {"grad_norm", s.grad_norm}, {"lr", lr},
                  {"tokens_per_s", tok_s}, {"ms_per_step", ms}, {"comm_ms", s.comm_ms}});
}

// Overhead of recruitment (probing, candidates, decisions, restores) against the run's
// wall time; the trials' steps are training and are reported apart.
void report_recruitment_time(const Recruiter& r, double wall, MetricsWriter& metrics) {
  const auto& rt = r.times();
  const double overhead = rt.statistics + rt.decision + rt.restore;
  spdlog::info("recruitment time: statistics {:.2f} s, decisions {:.2f} s, restores {:.2f} s = {:.2f}% of {:.1f} s; "
               "trials {:.2f} s ({:.1f}%)", rt.statistics, rt.decision, rt.restore, 100 * overhead / wall, wall,
               rt.trial, 100 * rt.trial / wall);
  metrics.write({{"event", "recruitment_time"}, {"statistics_s", rt.statistics}, {"decision_s", rt.decision},
                 {"restore_s", rt.restore}, {"trial_s", rt.trial}, {"wall_s", wall}});
}

// The last step and eval records of a run's metrics.jsonl (a run resumed when already
// complete reports them instead of numbers it did not compute). Unreadable lines are skipped.
void last_logged(const std::string& run_dir, TrainSummary& s) {
  std::ifstream in((std::filesystem::path(run_dir) / "metrics.jsonl").string());
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;
    const std::string event = j.value("event", "");
    if (event == "step") {
      s.last_logged_step = j.value("step", int64_t(-1));
      s.final_loss = j.value("loss", 0.0);
      s.final_ce = j.value("ce_nats", 0.0);
    } else if (event == "eval") {
      s.evaluated = true;
      s.final_eval.ce_nats = j.value("ce_nats", 0.0);
      s.final_eval.bits_per_byte = j.value("bits_per_byte", 0.0);
      s.final_eval.perplexity = j.value("perplexity", 0.0);
      s.final_eval.accuracy = j.value("accuracy", 0.0);
    }
  }
}

GroupSetup main_group_setup(const TrainPlan& p, const std::shared_ptr<Communicator>& world, const at::Device& device) {
  GroupSetup s;
  s.seed = p.seed;
  s.model = p.model;
  s.data = p.data;
  s.train = p.train;
  s.recruitment = p.recruitment;
  s.ranks = world;
  s.block_parallel = p.block_parallel;
  s.bucket_mb = p.bucket_mb;
  s.device = device;
  s.lead = world->rank() == 0;
  return s;
}

}  // namespace

std::string trainer_device_name(const std::string& requested) {
  if (requested == "cpu") return "cpu";
  const bool cuda = torch::cuda::is_available();
  if (requested == "cuda" && !cuda) {
    throw ConfigError("train.device: cuda requested but no CUDA device is visible (or LibTorch was built without CUDA)");
  }
  return cuda ? "cuda" : "cpu";
}

at::Device trainer_device(const std::string& requested, int local_rank) {
  if (trainer_device_name(requested) == "cpu") return at::Device(at::kCPU);
  const int n = static_cast<int>(torch::cuda::device_count());
  const auto index = static_cast<c10::DeviceIndex>(local_rank % n);
  if (local_rank >= n) {
    spdlog::warn("local rank {} shares GPU {} ({} visible): NCCL refuses two ranks on one GPU; start at most {} "
                 "ranks per node", local_rank, index, n, n);
  }
  const at::Device device(at::kCUDA, index);
  // The current device too: libraries that allocate on "the" device (cuBLAS handles,
  // NCCL) then use this rank's GPU, not GPU 0.
  c10::impl::getDeviceGuardImpl(at::kCUDA)->setDevice(device);
  return device;
}

TrainSummary train_run(const TrainPlan& p) {
  const auto t_start = Clock::now();
  stop_signal_install();  // SIGTERM/SIGUSR1 from here on: checkpoint at the next step boundary
  const TrainConfig& tc = p.train;
  const std::shared_ptr<Communicator> world = p.world ? p.world : local_communicator();
  const bool lead = world->rank() == 0;  // rank 0 logs progress, writes metrics, evaluates and checkpoints
  world->set_timeout(p.startup_timeout_s);
  torch_set_threads(static_cast<int>(tc.threads));
  at::manual_seed(p.seed);
  const at::Device device = trainer_device(tc.device, p.local_rank);
  if (tc.precision == "bf16" && !device.is_cuda()) {
    spdlog::warn("train.precision: bf16 autocast is used on CUDA only; training in fp32 on the CPU");
  }
  const std::unique_ptr<CheckpointContents> resumed = resume_read(p, world);
  ModelGroup group(main_group_setup(p, world, device), resumed.get());
  const RunEvaluation evaluation = run_evaluation(p, group, lead);
  if (resumed) {
    resume_generator(*resumed, *world);
    if (lead) {
      spdlog::info("resuming from {} (step {}, {} tokens seen)", resumed->dir, resumed->meta.step,
                   resumed->meta.tokens_seen);
    }
  }
  const int64_t start_step = resumed ? resumed->meta.step : 0;
  std::unique_ptr<MetricsWriter> metrics;
  if (lead) metrics = std::make_unique<MetricsWriter>((std::filesystem::path(p.run_dir) / "metrics.jsonl").string());
  ProgressLine progress(lead);
  TrainSummary summary;
  const FaultInjection fault = fault_injection_from_env();
  RunCheckpoints checkpoints({p.run_dir, world, p.config_yaml, fault}, tc);
  if (resumed) checkpoints.set_resumed(start_step, resumed->dir);
  if (start_step >= tc.steps) {
    if (lead) spdlog::info("the checkpoint is at step {}, train.steps is {}: nothing left to train", start_step, tc.steps);
    summary.steps = start_step;
    summary.checkpoint = resumed->dir;
    summary.already_complete = true;
    if (lead) last_logged(p.run_dir, summary);
    return summary;
  }

  LoopSetup ls{world, start_step, p.timeout_s, fault, forced_remap_step_from_env()};
  LoopHooks hooks;
  hooks.report = [&](const ModelGroup& g, int64_t step, const StepStats& s, const std::vector<double>& dial,
                     double lr, double ms, bool log_step) {
    report_step(progress, metrics.get(), g, step, s, dial, lr, ms, log_step);
  };
  hooks.record = [&](const nlohmann::json& rec) {
    if (metrics) metrics->write(rec);
  };
  if (evaluation.available) hooks.evaluate = [&](int64_t step) { evaluation.run(group, step, *metrics, progress); };
  hooks.interrupted = [&] { progress.finish(); };
  const LoopEnd end = train_loop(ls, {&group}, checkpoints, hooks);
  summary.final_loss = end.last.loss;
  summary.final_ce = end.last.ce;
  if (end.stop_signal != 0) {
    summary.checkpoint = checkpoints.last_dir();
    summary.steps = end.steps;
    summary.stop_signal = end.stop_signal;
    summary.seconds = seconds_since(t_start);
    spdlog::warn("stopped by signal {} before step {}: checkpoint {}; continue with --resume auto",
                 summary.stop_signal, end.steps, summary.checkpoint);
    return summary;
  }
  progress.finish();
  summary.steps = tc.steps;
  if (lead && evaluation.available) {
    summary.final_eval = evaluation.run(group, tc.steps, *metrics, progress);
    summary.evaluated = true;
  }
  checkpoints.save(group, tc.steps, false);
  summary.checkpoint = checkpoints.last_dir();
  if (group.recruiter && lead) report_recruitment_time(*group.recruiter, seconds_since(t_start), *metrics);
  world->barrier("end of training");
  summary.seconds = seconds_since(t_start);
  spdlog::info("trained {} steps in {:.1f} s; checkpoint {}", tc.steps, summary.seconds, summary.checkpoint);
  return summary;
}

}  // namespace localist
