// SPDX-License-Identifier: Apache-2.0
// run_checkpoints.cpp: see run_checkpoints.h.
#include "run/run_checkpoints.h"

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

LlmWrite llm_write_of(ModelGroup& g, const Pool& pool, size_t llm) {
  const PoolLlmConfig& c = pool.config().llms[llm];
  LlmWrite w;
  w.name = c.name;
  w.model = &g.model();
  w.optimizer = &g.optimizer();
  w.distributed_state = [&g](const at::Tensor& p) { return g.distributed_state(p); };
  w.map = g.block_map();
  w.dp_rank = g.mesh().dp_rank;
  w.bp_rank = g.mesh().bp_rank;
  w.lead = g.mesh().ranks->rank() == 0;
  if (g.recruiter()) {
    w.recruitment_log = g.recruiter()->log();
    w.recruitment = g.recruiter()->state();
  }
  w.info = {{"order", llm},
            {"parent", c.branch_from},
            {"branch_step", c.branch_step},
            {"domains", c.domains},
            {"parameters", g.whole_parameters()},
            {"global_batch", c.global_batch},
            {"ranks", pool.map().ranks(llm)},
            {"spawned", c.spawned}};
  return w;
}

void RunCheckpoints::save(const Pool& pool, int64_t step, bool periodic) {
  const TrainConfig& tc = train_;
  const std::vector<ModelGroup*> local = pool.local_groups();
  const ModelGroup& g = *local.front();  // every LLM shares the tokenizer, seed and schedules
  const int64_t L = g.setup().model.n_layers;
  const Tokenizer& tok = g.tokenizer();
  CheckpointWrite w;
  w.run_dir = s_.run_dir;
  w.world = s_.world;
  // ZeRO: each group's whole moments, gathered over its dp ranks (in pool order on every rank).
  for (ModelGroup* m : local) m->gather_optimizer_state();
  for (ModelGroup* m : local) w.llms.push_back(llm_write_of(*m, pool, pool.config().index(m->setup().name)));
  w.meta =
      CheckpointMeta{step,       pool.tokens_before(step), tok.vocab_size(), g.setup().seed, tok.kind(), tok.hash(),
                     tok.spec(), /*written_by=*/{}};
  w.config_yaml = s_.config_yaml;
  if (s_.world->rank() == 0) {  // only rank 0 writes the shared files (checkpoint_writer.h)
    w.tokenizer_file = tokenizer_stored_file(tok.kind());
    if (!w.tokenizer_file.empty()) w.tokenizer_contents = tok.stored_contents();
  }
  w.keep_last = tc.keep_checkpoints;
  w.keep_every = tc.keep_checkpoint_every;
  w.on_point = fault_checkpoint_hook(s_.fault, s_.world->rank(), step);
  // The data position is the step: every LLM's sample order is a pure function of (seed, name, step).
  w.state = {{"data_position", {{"next_step", step}, {"global_batch", tc.global_batch}, {"seed", g.setup().seed}}},
             {"schedules", {{"lr", tc.lr.at(step)}, {"dial", tc.dial.at(step, L, g.setup().seed)}}},
             {"mesh", {{"world", s_.world->size()}, {"block_parallel", g.mesh().bp_size}}},
             {"pool_map", pool.map().to_json()}};
  if (!pool.pool_log().empty()) w.state["pool_log"] = pool.pool_log();
  writer_.start(w);
  for (ModelGroup* m : local) m->release_optimizer_state();  // the writer holds its own copies
  if (!periodic || !tc.async_checkpoint) commit_pending();
}

}  // namespace localist
