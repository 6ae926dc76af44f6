// SPDX-License-Identifier: Apache-2.0
// model_group.h: one LLM and the ranks that train it (DESIGN.md §2, groups): its data
// stream and tokenizer, the model and its AdamW, the DP x BP mesh of its ranks (block
// parallelism, gradient sync), its rules (the rules file plus recruited domain routes)
// and its block recruiter. The pool (pool.h) holds one group per LLM on the ranks that
// train it; the train step (train_step.h) and loop (train_loop.h) drive it.
// Limits: under bp > 1 the norms and router are replicated (see block_parallel.h).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "data/batch_reader.h"
#include "data/data_config.h"
#include "data/tokenizer.h"
#include "model/localist_model.h"
#include "model/model_config.h"
#include "model/rules.h"
#include "parallel/block_map.h"
#include "parallel/block_slots.h"
#include "parallel/zero_optimizer.h"
#include "recruitment/recruitment_config.h"
#include "recruitment/trial.h"
#include "trainer/group_mesh.h"
#include "trainer/group_rules.h"
#include "trainer/train_config.h"

namespace torch::optim {
class AdamW;
}

namespace localist {

class BlockParallel;
class GradientSync;

class Recruiter;
struct CheckpointContents;
struct LlmCheckpoint;

struct GroupSetup {
  std::string name = "main";
  uint64_t seed = 0;                // the run's seed (model construction, recruitment)
  uint64_t stream_seed = 0;         // this LLM's data and dropout streams (main: the run's seed)
  std::vector<StreamPhase> phases;  // its share of the training sources (empty: all)
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  RecruitmentConfig recruitment;
  std::shared_ptr<Communicator> ranks;
  int64_t block_parallel = 1;
  double bucket_mb = 1.0;
  int64_t zero = 0;                     // distributed.zero: 1 shards the replicated parameters' moments over dp
  std::string vocab_parallel = "auto";  // distributed.vocab_parallel (bp > 1)
  at::Device device = at::kCPU;
  bool lead = false;  // this rank logs for the group
};

class ModelGroup {
 public:
  // Builds everything and loads `resumed` (may be null): model, then optimizer state, of
  // the checkpoint's LLM `source` (default: this LLM; a branch loads its parent's).
  ModelGroup(const GroupSetup& setup, const CheckpointContents* resumed, const std::string& source = "");
  ~ModelGroup();
  ModelGroup(const ModelGroup&) = delete;
  ModelGroup& operator=(const ModelGroup&) = delete;

  // The block map the group trains under (bp 1: every active block on rank 0).
  BlockMap block_map() const;
  // The domain a training row is shown with (a routed domain may hide its tag).
  std::string row_domain(int64_t step, int32_t source, int64_t start) const;
  // The rules of this step: the rules file as last reloaded (the loop reloads it once per
  // step, before a recruitment round) with the recruited domains' routes in front.
  const RuleSet& step_rules();
  // What probes and trials (block recruitment, the pool's spawn trials) run on: this
  // group's model, data and ranks, and under bp > 1 its shards.
  TrialSetup trial_setup() const;
  // A recruitment round (collective over the group); applies its block changes.
  nlohmann::json recruitment_round(int64_t step, const std::vector<double>& dial, double lr);
  // The timeout of every communicator of the group (start-up is over: the steady one).
  void set_timeout(double seconds) { mesh_.set_timeout(seconds); }
  // Test hook (LOCALIST_TEST_REMAP_STEP): every block moves to the next bp rank.
  void remap_for_test(int64_t step);

  // What the group holds, read by the train step, the loop, the pool and checkpoints;
  // the group builds and owns all of it (the optional parts: null where absent).
  const GroupSetup& setup() const { return setup_; }
  const GroupMesh& mesh() const { return mesh_; }
  bool bf16() const { return bf16_; }
  int64_t accum() const { return accum_; }          // micro-batches of this rank per step (the last may be short)
  int64_t row_begin() const { return row_begin_; }  // this rank's rows [begin, end) of the global batch
  int64_t row_end() const { return row_end_; }
  BatchReader& reader() { return *reader_; }
  const BatchReader& reader() const { return *reader_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::vector<std::string>& token_texts() const { return token_texts_; }      // each id's bytes
  const std::vector<std::string>& source_domain() const { return source_domain_; }  // per training source
  LocalistModel& model() { return *model_; }
  const LocalistModel& model() const { return *model_; }
  const std::shared_ptr<LocalistModel>& shared_model() const { return model_; }
  int64_t whole_parameters() const { return whole_parameters_; }  // model().parameter_count(): this rank's share
  torch::optim::AdamW& optimizer() { return *optimizer_; }
  const torch::optim::AdamW& optimizer() const { return *optimizer_; }
  const std::vector<at::Tensor>& adamw_params() const { return adamw_params_; }
  const std::vector<at::Tensor>& replica_summed() const { return replica_summed_; }
  const MomentsOf& moments() const { return moments_; }
  BlockParallel* blocks() { return blocks_.get(); }
  const BlockParallel* blocks() const { return blocks_.get(); }
  GradientSync* grad_sync() { return grad_sync_.get(); }
  const GradientSync* grad_sync() const { return grad_sync_.get(); }
  ZeroAdamW* zero() { return zero_.get(); }
  const ZeroAdamW* zero() const { return zero_.get(); }
  ZeroAdamW* zero_split() { return zero_split_.get(); }
  const ZeroAdamW* zero_split() const { return zero_split_.get(); }
  Recruiter* recruiter() { return recruiter_.get(); }
  const Recruiter* recruiter() const { return recruiter_.get(); }
  GroupRules& rules() { return rules_; }
  const GroupRules& rules() const { return rules_; }

  // bp > 1: each rank holds only its share of the block and FFN tensors (recruitment
  // rounds run on the shares too); release_assembled (local) goes back to the share after
  // an evaluation's assembly: every train step, recruitment round and
  // gather_optimizer_state call it first.
  void release_assembled();
  // The whole model on the group's lead alone (its evaluation): the lead's replica sends
  // it their shares; every other rank holds only its share (collective over the replica).
  void assemble_on_lead();
  // The whole AdamW state of each parameter whose state is spread over ranks (ZeRO's
  // chunks; under bp > 1 the FFN parts, with the whole FFN parameter), gathered for a
  // checkpoint or a state move (collective over the group, in pool order) and released
  // right after. Block tensors are not gathered: each owner writes its own blocks.
  void gather_optimizer_state();
  void release_optimizer_state();
  // Null when p's state is this rank's torch AdamW's; else its gathered whole state
  // (undefined tensors before its first step). Throws when it was not gathered.
  const FullMoments* distributed_state(const at::Tensor& p) const;
  void zero_grad();  // every parameter's gradient (torch's AdamW and ZeRO's)
  // Whether logged training steps trace a micro-batch (the largest-block-share statistic):
  // not under bp > 1 (traces need every block on one rank) nor under activation
  // checkpointing (a trace keeps every layer's attention, the peak it exists to avoid).
  bool traces_steps() const { return !blocks_ && !setup_.train.activation_checkpointing; }
  // What this rank holds for the group, counted from tensor sizes: parameters, gradients,
  // optimizer moments (torch's AdamW and ZeRO's chunk), and the block tensors' part.
  // sync_buffers: the gradient sync's flat bucket buffers (dp > 1) and ZeRO's flat
  // gradient buffers — copies of the gradients that communication needs.
  struct Memory {
    int64_t parameters = 0, gradients = 0, optimizer = 0, sync_buffers = 0;
  };
  Memory memory() const;

 private:
  GroupSetup setup_;
  GroupMesh mesh_;
  bool bf16_ = false;
  int64_t accum_ = 1;                    // micro-batches of this rank per step (the last may be short)
  int64_t row_begin_ = 0, row_end_ = 0;  // this rank's rows [begin, end) of the global batch
  std::unique_ptr<BatchReader> reader_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<std::string> token_texts_;    // each id's bytes
  std::vector<std::string> source_domain_;  // per training source
  std::shared_ptr<LocalistModel> model_;
  int64_t whole_parameters_ = 0;  // the whole model's parameter count (model->parameter_count(): this rank's share)
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  // torch's AdamW's parameters, decay then no-decay (its order): all of them; under ZeRO
  // the block (and bp > 1: FFN) tensors when dp = 1, none when dp > 1.
  std::vector<at::Tensor> adamw_params_;
  // bp > 1: the replicated parameters, whose gradients are partial per rank of the
  // replica (each rank's positions; the router: each rank's blocks) and are summed over
  // it after backward.
  std::vector<at::Tensor> replica_summed_;
  // Each parameter's AdamW moments: torch's, or (under zero_split_, between
  // open_split_moments and close_split_moments: a recruitment round, a test remap) the
  // split tensors' whole moments gathered from the ZeRO chunks, written back on close.
  MomentsOf moments_;
  std::unique_ptr<BlockParallel> blocks_;    // bp > 1 only
  std::unique_ptr<GradientSync> grad_sync_;  // dp > 1 only (under ZeRO: the block tensors only)
  std::unique_ptr<ZeroAdamW> zero_;          // distributed.zero 1 on several ranks: the replicated parameters
  // distributed.zero 1 with dp > 1: the split tensors (blocks; FFN under bp > 1),
  // sharded over the ranks that hold the same share (mesh.dp).
  std::unique_ptr<ZeroAdamW> zero_split_;
  std::unique_ptr<Recruiter> recruiter_;  // recruitment.enabled only
  GroupRules rules_;
  void reader_rows(int64_t global_batch);
  // The constructor's steps: the data stream and tokenizer; the model (cut to this rank's
  // share under bp > 1, then loaded from `from`); the block recruiter.
  void make_data();
  void make_model(const CheckpointContents* resumed, const LlmCheckpoint* from, const std::string& source);
  void make_recruiter(const CheckpointContents* resumed, const LlmCheckpoint* from);
  void make_optimizers(const CheckpointContents* resumed, const std::string& source, int64_t read_before);
  void make_gradient_sync();
  void open_split_moments();   // collective over dp
  void close_split_moments();  // local
  MomentsOf torch_moments_;
  std::map<const void*, FullMoments> split_moments_;
  int32_t place_blocks(int64_t slot);  // after blocks switched: the planner's next map; slot's owner
  BlockMap next_map(const std::vector<uint8_t>& active) const;  // the planner's map after blocks->map() (bp > 1)
  std::vector<uint8_t> active_mask() const;
  bool split_part(const at::Tensor& p) const;  // an FFN tensor (or the embedding) split over bp > 1
  int64_t resumed_epoch_ = 0;
  std::map<const void*, FullMoments> gathered_;
  bool gathered_ready_ = false;
};

}  // namespace localist
