// SPDX-License-Identifier: Apache-2.0
// train_loop.cpp: see train_loop.h.
#include "run/train_loop.h"

#include <ATen/ATen.h>

#include <chrono>

#include "core/stop_signal.h"
#include "recruitment/recruiter.h"

namespace localist {
namespace {

using Clock = std::chrono::steady_clock;

struct Boundary {
  int64_t stop_signal = 0;
  bool written = true;
  std::vector<int64_t> queued;  // every rank's queued record bytes
};

// The step-boundary agreement, max over the world: {stop signal, 1 while this rank's
// checkpoint write runs, then each rank's queued record bytes in its own slot}.
Boundary agree_at_boundary(Communicator& world, const RunCheckpoints& checkpoints, const RecordRelay& relay,
                           int64_t step) {
  auto flags = at::zeros({2 + world.size()}, at::kLong);
  flags[0] = stop_signal_pending();
  flags[1] = checkpoints.local_done() ? 0 : 1;
  flags[2 + world.rank()] = relay.queued_bytes();
  if (world.size() > 1) world.all_reduce(flags, ReduceOp::kMax, "stop flag (step " + std::to_string(step) + ")");
  const int64_t* f = flags.data_ptr<int64_t>();
  return {f[0], f[1] == 0, std::vector<int64_t>(f + 2, f + 2 + world.size())};
}

bool leads(const ModelGroup& g) { return g.mesh().ranks->rank() == 0; }

// The held-out evaluation before `step` on each group's lead (collective over the groups).
void evaluate_groups(const std::vector<ModelGroup*>& groups, int64_t step, RecordRelay& relay, const LoopHooks& hooks) {
  for (ModelGroup* g : groups) g->assemble_on_lead();  // every rank of the lead's replica, before the lead evaluates
  for (ModelGroup* g : groups) {
    if (!leads(*g)) continue;
    const nlohmann::json rec = hooks.evaluate(*g, step);
    if (!rec.is_null()) relay.post(rec);
  }
  for (ModelGroup* g : groups) g->release_assembled();  // back to each rank's share at once
}

}  // namespace

LoopEnd train_loop(const LoopSetup& setup, Pool& pool, RunCheckpoints& checkpoints, RecordRelay& relay,
                   const LoopHooks& hooks) {
  // All groups run in lockstep: the cadence is the run's (every LLM shares it). A copy:
  // a branch step replaces the groups.
  const TrainConfig tc = pool.local_groups().front()->setup().train;
  const int64_t L = pool.local_groups().front()->setup().model.n_layers;
  const uint64_t seed = pool.local_groups().front()->setup().seed;
  Communicator& world = *setup.world;
  LoopEnd end;
  PoolSpawner spawner(pool, tc);
  auto ms_since = [](Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };
  // Each step's window starts where the previous step's training ended: the evaluation
  // and checkpoint that followed it are carried into the next step's time.
  auto window_start = Clock::now();
  double carried_eval_ms = 0, carried_checkpoint_ms = 0;
  for (int64_t step = setup.start_step; step < tc.steps; ++step) {
    const auto step_start = Clock::now();
    const bool timed = step > setup.start_step;
    fault_maybe_trigger(setup.fault, world.rank(), step);
    // A stop signal on any rank (also one received during evaluation or start-up) is
    // agreed on by all at this step boundary: checkpoint the state before this step, exit.
    // The same all-reduce tells whether every rank's background checkpoint write is
    // done, so the commit happens at the same boundary everywhere.
    const Boundary b = agree_at_boundary(world, checkpoints, relay, step);
    if (b.written) checkpoints.commit_pending();
    relay.exchange(b.queued, "step " + std::to_string(step));
    const double boundary_ms = ms_since(step_start);
    if (timed) end.control_ms += boundary_ms;
    if (b.stop_signal != 0) {
      if (hooks.interrupted) hooks.interrupted();
      checkpoints.commit_pending();
      // The checkpoint of this step may exist already (resumed from, or just written):
      // never rewrite a committed one.
      if (step != checkpoints.last_step()) checkpoints.save(pool, step, false);
      end.steps = step;
      end.stop_signal = static_cast<int>(b.stop_signal);
      end.spawn = spawner.times();
      return end;
    }
    const auto rounds_start = Clock::now();
    pool.advance_to(step);  // a branch step: specialists join, the map is re-planned
    std::vector<ModelGroup*> groups = pool.local_groups();
    const double lr = tc.lr.at(step);
    for (ModelGroup* g : groups) {
      if (step == setup.forced_remap_step) g->remap_for_test(step);
      g->rules().reload_if_changed();
      if (g->recruiter() && g->recruiter()->due(step)) {
        nlohmann::json rec = g->recruitment_round(step, tc.dial.at(step, L, seed), lr);
        rec["llm"] = g->setup().name;
        if (leads(*g)) relay.post(rec);
      }
    }
    if (spawner.due(step)) {  // hierarchical recruitment: a specialist may join before this step
      const nlohmann::json rec = spawner.round(step);
      if (world.rank() == 0) relay.post(rec);
      groups = pool.local_groups();
    }
    const std::vector<double> dial = tc.dial.at(step, L, seed);
    const bool log_step = step % tc.log_every == 0 || step + 1 == tc.steps;
    StepTime time;
    time.eval_ms = carried_eval_ms, time.checkpoint_ms = carried_checkpoint_ms;
    time.boundary_ms = boundary_ms, time.rounds_ms = ms_since(rounds_start);
    for (ModelGroup* g : groups) {
      const auto t0 = Clock::now();
      const StepStats stats = train_step(*g, step, dial, lr, log_step);
      if (step == setup.start_step) {  // start-up is over
        world.set_timeout(setup.timeout_s);
        g->set_timeout(setup.timeout_s);
      }
      time.train_ms = ms_since(t0);
      time.wall_ms = ms_since(window_start);
      if (!hooks.report) continue;
      const nlohmann::json rec = hooks.report(*g, step, stats, dial, lr, time, log_step);
      if (!rec.is_null() && leads(*g)) relay.post(rec);
    }
    window_start = Clock::now();
    const auto eval_start = window_start;
    if (hooks.evaluate && tc.eval_every > 0 && (step + 1) % tc.eval_every == 0 && step + 1 < tc.steps) {
      evaluate_groups(groups, step + 1, relay, hooks);
    }
    carried_eval_ms = ms_since(eval_start);
    const auto checkpoint_start = Clock::now();
    if (tc.checkpoint_every > 0 && (step + 1) % tc.checkpoint_every == 0 && step + 1 < tc.steps) {
      checkpoints.save(pool, step + 1, true);
    }
    carried_checkpoint_ms = ms_since(checkpoint_start);
    if (timed) end.step_ms += ms_since(step_start), ++end.timed_steps;
  }
  end.steps = tc.steps;
  end.spawn = spawner.times();
  return end;
}

}  // namespace localist
