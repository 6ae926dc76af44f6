// train_loop.cpp: see train_loop.h.
#include "trainer/train_loop.h"

#include <ATen/ATen.h>

#include <chrono>

#include "core/stop_signal.h"
#include "recruitment/recruiter.h"

namespace localist {
namespace {

using Clock = std::chrono::steady_clock;

// The step-boundary agreement: {stop signal, 1 while this rank's checkpoint write runs}, max over the world.
std::pair<int64_t, bool> agree_at_boundary(Communicator& world, const RunCheckpoints& checkpoints, int64_t step) {
  auto flags = at::tensor(std::vector<int64_t>{stop_signal_pending(), checkpoints.local_done() ? 0 : 1}, at::kLong);
  if (world.size() > 1) world.all_reduce(flags, ReduceOp::kMax, "stop flag (step " + std::to_string(step) + ")");
  return {flags[0].item<int64_t>(), flags[1].item<int64_t>() == 0};
}

}  // namespace

LoopEnd train_loop(const LoopSetup& setup, const std::vector<ModelGroup*>& groups, RunCheckpoints& checkpoints,
                   const LoopHooks& hooks) {
  // All groups run in lockstep: the cadence is the first group's (the pool shares it).
  const TrainConfig& tc = groups.front()->setup.train;
  const int64_t L = groups.front()->setup.model.n_layers;
  const uint64_t seed = groups.front()->setup.seed;
  Communicator& world = *setup.world;
  LoopEnd end;
  for (int64_t step = setup.start_step; step < tc.steps; ++step) {
    const auto t0 = Clock::now();
    fault_maybe_trigger(setup.fault, world.rank(), step);
    // A stop signal on any rank (also one received during evaluation or start-up) is
    // agreed on by all at this step boundary: checkpoint the state before this step, exit.
    // The same all-reduce tells whether every rank's background checkpoint write is
    // done, so the commit happens at the same boundary everywhere.
    const auto [stop_signal, written] = agree_at_boundary(world, checkpoints, step);
    if (written) checkpoints.commit_pending();
    if (stop_signal != 0) {
      if (hooks.interrupted) hooks.interrupted();
      checkpoints.commit_pending();
      // The checkpoint of this step may exist already (resumed from, or just written):
      // never rewrite a committed one.
      if (step != checkpoints.last_step()) checkpoints.save(*groups.front(), step, false);
      end.steps = step;
      end.stop_signal = static_cast<int>(stop_signal);
      return end;
    }
    const double lr = tc.lr.at(step);
    for (ModelGroup* g : groups) {
      if (step == setup.forced_remap_step) g->remap_for_test(step);
      g->rules.reload_if_changed();
      if (g->recruiter && g->recruiter->due(step)) {
        const nlohmann::json rec = g->recruitment_round(step, tc.dial.at(step, L, seed), lr);
        if (hooks.record) hooks.record(rec);
      }
    }
    const std::vector<double> dial = tc.dial.at(step, L, seed);
    const bool log_step = step % tc.log_every == 0 || step + 1 == tc.steps;
    for (ModelGroup* g : groups) {
      end.last = train_step(*g, step, dial, lr, log_step);
      if (step == setup.start_step) {  // start-up is over
        world.set_timeout(setup.timeout_s);
        g->mesh.set_timeout(setup.timeout_s);
      }
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (hooks.report) hooks.report(*g, step, end.last, dial, lr, ms, log_step);
    }
    if (world.rank() == 0 && hooks.evaluate && tc.eval_every > 0 && (step + 1) % tc.eval_every == 0 &&
        step + 1 < tc.steps) {
      hooks.evaluate(step + 1);
    }
    if (tc.checkpoint_every > 0 && (step + 1) % tc.checkpoint_every == 0 && step + 1 < tc.steps) {
      checkpoints.save(*groups.front(), step + 1, true);
    }
  }
  end.steps = tc.steps;
  return end;
}

}  // namespace localist
