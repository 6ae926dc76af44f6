// run_checkpoints.cpp: see run_checkpoints.h.
#include "trainer/run_checkpoints.h"

#include "recruitment/recruiter.h"

namespace localist {

RunCheckpoints::RunCheckpoints(RunCheckpointSetup setup, const TrainConfig& train)
    : s_(std::move(setup)), train_(train), writer_(train.async_checkpoint) {}

void RunCheckpoints::set_resumed(int64_t step, const std::string& dir) {
  last_step_ = step;
  last_dir_ = dir;
}

void RunCheckpoints::commit_pending() {
  if (!writer_.pending()) return;
  last_step_ = writer_.pending_step();
  last_dir_ = writer_.finish();
}

void RunCheckpoints::save(const ModelGroup& g, int64_t step, bool periodic) {
  const TrainConfig& tc = train_;
  const int64_t L = g.setup.model.n_layers, T = g.setup.model.context;
  const Tokenizer& tok = *g.tokenizer;
  CheckpointWrite w;
  w.run_dir = s_.run_dir;
  w.world = s_.world;
  w.model = g.model.get();
  w.optimizer = g.optimizer.get();
  w.map = g.block_map();
  w.dp_rank = g.mesh.dp_rank;
  w.bp_rank = g.mesh.bp_rank;
  w.meta = CheckpointMeta{step, step * tc.global_batch * T, tok.vocab_size(), g.setup.seed,
                          tok.kind(), tok.hash(), tok.spec()};
  w.config_yaml = s_.config_yaml;
  w.tokenizer_model_path = g.tokenizer_file;
  if (g.recruiter) w.recruitment_log = g.recruiter->log();
  w.keep_last = tc.keep_checkpoints;
  w.keep_every = tc.keep_checkpoint_every;
  w.on_point = fault_checkpoint_hook(s_.fault, s_.world->rank(), step);
  // The data position is the step: the sample order is a pure function of (seed, step).
  w.state = {{"data_position", {{"next_step", step}, {"global_batch", tc.global_batch}, {"seed", g.setup.seed}}},
             {"schedules", {{"lr", tc.lr.at(step)}, {"dial", tc.dial.at(step, L, g.setup.seed)}}},
             {"mesh", {{"world", s_.world->size()}, {"block_parallel", g.mesh.bp_size}}}};
  if (g.recruiter) w.state["recruitment"] = g.recruiter->state();
  writer_.start(w);
  if (!periodic || !tc.async_checkpoint) commit_pending();
}

}  // namespace localist
