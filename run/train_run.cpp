// SPDX-License-Identifier: Apache-2.0
// train_run.cpp: see train_run.h.
#include "run/train_run.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "checkpoint/checkpoint.h"
#include "comm/counting_communicator.h"
#include "core/error.h"
#include "core/metrics_writer.h"
#include "core/process_memory.h"
#include "core/progress_line.h"
#include "core/stop_signal.h"
#include "core/tensorboard_writer.h"
#include "pool/pool.h"
#include "recruitment/recruiter.h"
#include "run/record_relay.h"
#include "run/run_checkpoints.h"
#include "run/step_reporter.h"
#include "run/tensor_memory.h"
#include "run/torch_runtime.h"
#include "run/train_loop.h"
#include "trainer/device.h"
#include "trainer/evaluate.h"
#include "trainer/model_group.h"

namespace localist {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// train.tensorboard: "true" is the run's own directory for event files.
std::string tensorboard_dir(const TrainPlan& p) {
  if (p.train.tensorboard == "true") return (std::filesystem::path(p.run_dir) / "tensorboard").string();
  return p.train.tensorboard;
}

// The λ used for evaluation during and after training: the schedule's value at that
// step, except for dial-conditioned training (uniform), evaluated at the range's middle.
std::vector<double> eval_dial(const TrainConfig& t, int64_t step, int64_t layers, uint64_t seed) {
  if (t.dial.kind != "uniform") return t.dial.at(step, layers, seed);
  std::vector<double> v(layers, 0.5 * (t.dial.lo + t.dial.hi));
  const std::vector<double> w = t.dial.profile.weights(layers);
  for (int64_t l = 0; l < layers; ++l) v[l] *= w[l];
  return v;
}

// Resume: the checkpoint is found and verified first (a damaged one fails before any other work).
std::unique_ptr<CheckpointContents> resume_read(const TrainPlan& p, const std::shared_ptr<Communicator>& world) {
  if (world->rank() == 0) checkpoint_clean_partial(p.run_dir);
  world->barrier("checkpoint clean-up");
  if (p.resume.empty()) return nullptr;
  auto resumed = p.resume == "auto"
                     ? checkpoint_read_auto(p.run_dir, world)
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

// Held-out evaluation of an LLM during and after training (on its group's lead): the
// windows of the domains it trains at that step (main: those no specialist owns; all of
// them when it has none held out), as one eval record.
struct RunEvaluation {
  bool available = false;
  EvalSet set;
  EvalInputs inputs;
  nlohmann::json run(ModelGroup& g, const PoolConfig& pool, int64_t step) const {
    const TrainConfig& tc = g.setup().train;
    const EvalSet mine = own_windows(g, pool, step);
    EvalInputs in = inputs;
    in.token_texts = &g.token_texts();  // the group's own (a branch step replaces the groups)
    const EvalMetrics m = evaluate(g.model(), mine, eval_dial(tc, step, g.setup().model.n_layers, g.setup().seed),
                                   &g.rules().active(), in);
    auto j = eval_metrics_json(m);
    j["event"] = "eval";
    j["step"] = step;
    j["llm"] = g.setup().name;
    j["windows"] = mine.tokens.size(0);
    return j;
  }
  EvalSet own_windows(const ModelGroup& g, const PoolConfig& pool, int64_t step) const {
    if (!pool.declared) return set;
    const int me = pool.index(g.setup().name);
    std::vector<int64_t> rows;
    for (size_t r = 0; r < set.domains.size(); ++r) {
      if (pool.owner_at(set.domains[r], step) == me) rows.push_back(static_cast<int64_t>(r));
    }
    if (rows.empty()) return set;
    EvalSet out;
    out.tokens = set.tokens.index_select(0, at::tensor(rows, at::kLong));
    for (int64_t r : rows) out.domains.push_back(set.domains[r]);
    return out;
  }
};

RunEvaluation run_evaluation(const TrainPlan& p, const ModelGroup& g, bool lead) {
  RunEvaluation e;
  for (const auto& t : g.token_texts()) e.inputs.token_bytes.push_back(static_cast<int64_t>(t.size()));
  e.inputs.pad_id = g.tokenizer().pad_id();
  e.inputs.device = g.setup().device;
  e.inputs.batch = p.train.micro_batch;
  try {
    e.set = eval_set_load(p.data, p.model.context, p.train.eval_windows);
    e.available = true;
  } catch (const ConfigError& err) {
    if (lead) spdlog::warn("no held-out evaluation: {}", err.what());
  }
  return e;
}

// Overhead of recruitment (probing, candidates, decisions, restores) against the run's
// wall time; the trials' steps are training and are reported apart.
nlohmann::json recruitment_time_record(const ModelGroup& g, double wall) {
  const auto& rt = g.recruiter()->times();
  const double overhead = rt.statistics + rt.decision + rt.restore;
  spdlog::info(
      "recruitment time{}: statistics {:.2f} s, decisions {:.2f} s, restores {:.2f} s = {:.2f}% of {:.1f} s; "
      "trials {:.2f} s ({:.1f}%)",
      g.setup().name == "main" ? "" : " of " + g.setup().name, rt.statistics, rt.decision, rt.restore,
      100 * overhead / wall, wall, rt.trial, 100 * rt.trial / wall);
  return {{"event", "recruitment_time"},
          {"llm", g.setup().name},
          {"statistics_s", rt.statistics},
          {"decision_s", rt.decision},
          {"restore_s", rt.restore},
          {"trial_s", rt.trial},
          {"wall_s", wall}};
}

// Spawn rounds against the run's wall time on this rank: deciding and admitting (the
// overhead), the trials' training steps apart.
nlohmann::json spawn_time_record(const SpawnTimes& t, int rank, double wall, bool lead) {
  if (lead) {
    spdlog::info(
        "pool recruitment time: {} rounds, {} trials; decisions {:.2f} s, admissions {:.2f} s = {:.2f}% of "
        "{:.1f} s; trial steps {:.2f} s ({:.1f}%){}",
        t.rounds, t.trials, t.decision_s, t.admit_s, 100 * (t.decision_s + t.admit_s) / wall, wall, t.trial_s,
        100 * t.trial_s / wall, t.wait_s > 0 ? fmt::format("; waiting for main's trials {:.2f} s", t.wait_s) : "");
  }
  return {{"event", "pool_recruitment_time"},
          {"rank", rank},
          {"rounds", t.rounds},
          {"trials", t.trials},
          {"decision_s", t.decision_s},
          {"admit_s", t.admit_s},
          {"trial_s", t.trial_s},
          {"wait_s", t.wait_s},
          {"round_s", t.round_s},
          {"wall_s", wall}};
}

// What a run's records say for its summary: main's last step and eval numbers, and each
// LLM's last bits per token (also how a run resumed when already complete reports).
void absorb_record(const nlohmann::json& j, const PoolConfig& pool, TrainSummary& s) {
  const std::string event = j.value("event", ""), llm = j.value("llm", "main");
  if (event != "step" && event != "eval") return;
  if (pool.declared) {
    auto it = std::find_if(s.llms.begin(), s.llms.end(), [&](const auto& l) { return l.name == llm; });
    if (it == s.llms.end()) {
      s.llms.push_back({llm});
      it = s.llms.end() - 1;
    }
    if (event == "step") it->bits_per_token = j.value("bits_per_token", 0.0);
    if (event == "eval") it->eval_bits_per_byte = j.value("bits_per_byte", -1.0);
  }
  if (llm != "main") return;
  if (event == "step") {
    s.last_logged_step = j.value("step", int64_t(-1));
    s.final_loss = j.value("loss", 0.0);
    s.final_ce = j.value("ce_nats", 0.0);
  } else {
    s.evaluated = true;
    s.final_eval.ce_nats = j.value("ce_nats", 0.0);
    s.final_eval.bits_per_byte = j.value("bits_per_byte", 0.0);
    s.final_eval.perplexity = j.value("perplexity", 0.0);
    s.final_eval.accuracy = j.value("accuracy", 0.0);
  }
}

// The records of a run's metrics.jsonl (unreadable lines are skipped).
void last_logged(const std::string& run_dir, const PoolConfig& pool, TrainSummary& s) {
  std::ifstream in((std::filesystem::path(run_dir) / "metrics.jsonl").string());
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) absorb_record(j, pool, s);
  }
}

PoolSetup pool_setup(const TrainPlan& p, const std::shared_ptr<Communicator>& world, const at::Device& device) {
  PoolSetup ps;
  ps.pool = p.pool.declared ? p.pool : PoolConfig::single(p.train.global_batch);
  ps.world = world;
  GroupSetup& s = ps.base;
  s.seed = p.seed;
  s.model = p.model;
  s.data = p.data;
  s.train = p.train;
  s.recruitment = p.recruitment;
  s.block_parallel = p.block_parallel;
  s.bucket_mb = p.bucket_mb;
  s.zero = p.zero;
  s.vocab_parallel = p.vocab_parallel;
  s.device = device;
  return ps;
}

// Rank 0's metrics.jsonl (an interrupted attempt's records after the checkpoint removed:
// those steps are logged again now) and the TensorBoard event files that mirror it.
struct RecordFiles {
  std::unique_ptr<MetricsWriter> metrics;
  std::unique_ptr<TensorBoardWriter> tensorboard;
};
RecordFiles open_record_files(const TrainPlan& p, const CheckpointContents* resumed, int64_t start_step) {
  RecordFiles f;
  const std::string path = (std::filesystem::path(p.run_dir) / "metrics.jsonl").string();
  const MetricsCut cut = resumed ? metrics_cut_to_checkpoint(path, start_step) : MetricsCut{};
  f.metrics = std::make_unique<MetricsWriter>(path);
  if (resumed) {
    f.metrics->write({{"event", "resume"},
                      {"step", start_step},
                      {"wall_time", unix_seconds()},
                      {"checkpoint", resumed->dir},
                      {"records_kept", cut.kept},
                      {"records_dropped", cut.dropped}});
    if (cut.dropped > 0) {
      spdlog::info("metrics.jsonl: {} record(s) logged after the checkpoint of step {} removed (logged again now)",
                   cut.dropped, start_step);
    }
  }
  if (!tensorboard_dir(p).empty()) {  // shows metrics.jsonl as it is now, then follows it
    f.tensorboard = std::make_unique<TensorBoardWriter>(tensorboard_dir(p), path);
    spdlog::info("TensorBoard event file: {}", f.tensorboard->path());
  }
  return f;
}

// What rank 0 does with every record, whichever rank made it: writes it to metrics.jsonl,
// folds it into the summary, and shows steps, spawns and evaluations.
// TensorBoard's event files (when configured) get the same records, with the same time.
std::function<void(const nlohmann::json&)> record_sink(MetricsWriter* metrics, TensorBoardWriter* tensorboard,
                                                       const PoolConfig& pc, TrainSummary& summary,
                                                       StepReporter& reporter) {
  return [metrics, tensorboard, &pc, &summary, &reporter](const nlohmann::json& in) {
    nlohmann::json rec = in;
    if (!rec.contains("wall_time")) rec["wall_time"] = unix_seconds();
    metrics->write(rec);
    if (tensorboard) tensorboard->write(rec);
    absorb_record(rec, pc, summary);
    const std::string event = rec.value("event", "");
    if (event == "step") reporter.heard(rec);
    if (event == "pool_recruitment" && rec.value("accepted", false)) {  // announced above the progress line
      reporter.progress().finish();
      spdlog::info(
          "step {}: spawned specialist {} for domain {} (G - z*SE - c_LLM = {:.4g} bits); ranks {}",
          rec.value("step", 0), rec.value("name", ""), rec.value("domain", ""),
          rec.value("gain_bits", 0.0) - rec.value("z", 0.0) * rec.value("se_bits", 0.0) - rec.value("cost_bits", 0.0),
          rec.at("ranks_after").dump());
    }
    if (event == "eval") {
      reporter.progress().finish();
      spdlog::info(
          "eval step {}{}: ce {:.4f} nats, {:.3f} bits/byte, ppl {:.3f}, acc {:.3f}, attention entropy {:.3f} "
          "bits, own-block fidelity {:.3f}, largest block share {:.3f}",
          rec.value("step", 0), pc.declared ? " [" + rec.value("llm", std::string("main")) + "]" : "",
          rec.value("ce_nats", 0.0), rec.value("bits_per_byte", 0.0), rec.value("perplexity", 0.0),
          rec.value("accuracy", 0.0), rec.value("attn_entropy_bits", 0.0), rec.value("own_fidelity_mass", 0.0),
          rec.value("max_block_share", 0.0));
    }
  };
}

// Each rank's share of the step spent at the step boundary (the control plane).
void post_control_plane(RecordRelay& relay, const LoopEnd& end, const Communicator& world, bool lead) {
  if (end.timed_steps <= 0) return;
  const double per = end.control_ms / end.timed_steps, step_ms = end.step_ms / end.timed_steps;
  relay.post({{"event", "control_plane"},
              {"rank", world.rank()},
              {"ms_per_step", per},
              {"step_ms", step_ms},
              {"share", per / step_ms}});
  if (lead) {
    spdlog::info("control plane: {:.3f} ms per step on rank 0 ({:.2f}% of {:.1f} ms per step)", per,
                 100 * per / step_ms, step_ms);
  }
}

// What each rank holds for each of its LLMs: parameters, gradients, optimizer, buffers.
void post_memory(RecordRelay& relay, Pool& pool, const Communicator& world) {
  const ProcessMemory pm = process_memory();
  const TensorMemory tm = tensor_memory();
  for (ModelGroup* g : pool.local_groups()) {
    g->release_assembled();
    const ModelGroup::Memory m = g->memory();
    nlohmann::json rec = {{"event", "memory"},
                          {"rank", world.rank()},
                          {"llm", g->setup().name},
                          {"dp_rank", g->mesh().dp_rank},
                          {"bp_rank", g->mesh().bp_rank},
                          {"blocks", g->block_map().owned_by(g->mesh().bp_rank)},
                          {"parameter_bytes", m.parameters},
                          {"gradient_bytes", m.gradients},
                          {"optimizer_bytes", m.optimizer},
                          {"sync_buffer_bytes", m.sync_buffers},
                          {"rss_bytes", pm.rss_bytes},
                          {"peak_rss_bytes", pm.peak_rss_bytes}};
    if (tm.counting) rec["tensor_bytes"] = tm.live, rec["peak_tensor_bytes"] = tm.peak;  // all LLMs of this rank
    relay.post(rec);
    spdlog::info(
        "memory of LLM '{}' on this rank: parameters {:.2f} MB, gradients {:.2f} MB, optimizer {:.2f} MB; "
        "process RSS {:.1f} MB, peak {:.1f} MB",
        g->setup().name, m.parameters / 1e6, m.gradients / 1e6, m.optimizer / 1e6, pm.rss_bytes / 1e6,
        pm.peak_rss_bytes / 1e6);
  }
}

}  // namespace

TrainSummary train_run(const TrainPlan& p) {
  const auto t_start = Clock::now();
  stop_signal_install();             // SIGTERM/SIGUSR1 from here on: checkpoint at the next step boundary
  tensor_memory_install_from_env();  // benchmarks: count CPU tensor bytes (before any model exists)
  const TrainConfig& tc = p.train;
  std::shared_ptr<Communicator> world = p.world ? p.world : local_communicator();
  std::shared_ptr<CommByteCounts> comm_counts;  // benchmarks and the plan's checks: bytes per group
  if (const char* c = std::getenv("LOCALIST_COUNT_COMM_BYTES"); c && std::string(c) == "1") {
    comm_counts = std::make_shared<CommByteCounts>();
    world = std::make_shared<CountingCommunicator>(world, comm_counts);
  }
  const bool lead = world->rank() == 0;  // rank 0 logs progress, writes metrics and the checkpoint index
  world->set_timeout(p.startup_timeout_s);
  torch_set_threads(rank_threads(tc.threads, p.local_ranks));
  at::manual_seed(p.seed);
  const at::Device device = trainer_device(tc.device, p.local_rank);
  const std::unique_ptr<CheckpointContents> resumed = resume_read(p, world);
  const int64_t start_step = resumed ? resumed->meta.step : 0;
  Pool pool(pool_setup(p, world, device), start_step, resumed.get());
  const PoolConfig& pc = pool.config();
  const RunEvaluation evaluation = run_evaluation(p, *pool.local_groups().front(), lead);
  if (resumed) {
    resume_generator(*resumed, *world);
    if (lead) {
      spdlog::info("resuming from {} (step {}, {} tokens seen)", resumed->dir, resumed->meta.step,
                   resumed->meta.tokens_seen);
    }
  }
  RecordFiles files;
  if (lead) files = open_record_files(p, resumed.get(), start_step);
  // Every rank measures at once, as they will share the machine while training.
  world->barrier("device peak");
  const DevicePeak peak = device_peak(device, pool.local_groups().front()->bf16());
  if (lead) spdlog::info("MFU against {}", peak.flops > 0 ? peak.source : "no known peak (" + peak.source + "): n/a");
  StepReporter reporter(pc, lead, peak, comm_counts);
  TrainSummary summary;
  const FaultInjection fault = fault_injection_from_env();
  RunCheckpoints checkpoints({p.run_dir, world, p.config_yaml, fault}, tc);
  if (resumed) checkpoints.set_resumed(start_step, resumed->dir);
  if (resumed) resumed->close_files();  // everything is loaded: no rank file stays open while training
  if (start_step >= tc.steps) {
    if (lead)
      spdlog::info("the checkpoint is at step {}, train.steps is {}: nothing left to train", start_step, tc.steps);
    summary.steps = start_step;
    summary.checkpoint = resumed->dir;
    summary.already_complete = true;
    if (lead) last_logged(p.run_dir, pc, summary);
    return summary;
  }

  RecordRelay relay(world, record_sink(files.metrics.get(), files.tensorboard.get(), pc, summary, reporter));
  LoopSetup ls{world, start_step, p.timeout_s, fault, forced_remap_step_from_env()};
  LoopHooks hooks;
  hooks.report = [&](const ModelGroup& g, int64_t step, const StepStats& s, const std::vector<double>& dial, double lr,
                     const StepTime& time,
                     bool log_step) { return reporter.report(g, step, s, dial, lr, time, log_step); };
  if (evaluation.available) {
    hooks.evaluate = [&](ModelGroup& g, int64_t step) { return evaluation.run(g, pc, step); };
  }
  hooks.interrupted = [&] { reporter.progress().finish(); };
  tensor_memory_reset_peak();  // the peak of training, not of the set-up
  const LoopEnd end = train_loop(ls, pool, checkpoints, relay, hooks);
  if (end.stop_signal != 0) {
    relay.flush("stop");
    summary.checkpoint = checkpoints.last_dir();
    summary.steps = end.steps;
    summary.stop_signal = end.stop_signal;
    summary.seconds = seconds_since(t_start);
    spdlog::warn("stopped by signal {} before step {}: checkpoint {}; continue with --resume auto", summary.stop_signal,
                 end.steps, summary.checkpoint);
    return summary;
  }
  reporter.progress().finish();
  summary.steps = tc.steps;
  post_control_plane(relay, end, *world, lead);
  post_memory(relay, pool, *world);  // before the final evaluation and checkpoint add their own
  for (ModelGroup* g : pool.local_groups()) g->assemble_on_lead();  // before the leads evaluate
  for (ModelGroup* g : pool.local_groups()) {
    if (g->mesh().ranks->rank() != 0) continue;
    if (evaluation.available) relay.post(evaluation.run(*g, pc, tc.steps));
  }
  checkpoints.save(pool, tc.steps, false);
  summary.checkpoint = checkpoints.last_dir();
  for (ModelGroup* g : pool.local_groups()) {
    if (g->recruiter() && g->mesh().ranks->rank() == 0) relay.post(recruitment_time_record(*g, seconds_since(t_start)));
  }
  if (pc.recruit.enabled) relay.post(spawn_time_record(end.spawn, world->rank(), seconds_since(t_start), lead));
  relay.flush("end of training");
  world->barrier("end of training");
  summary.seconds = seconds_since(t_start);
  spdlog::info("trained {} steps in {:.1f} s; checkpoint {}", tc.steps, summary.seconds, summary.checkpoint);
  return summary;
}

}  // namespace localist
