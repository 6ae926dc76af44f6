// SPDX-License-Identifier: Apache-2.0
// model_group.cpp: see model_group.h.
#include "trainer/model_group.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include <torch/optim/adamw.h>
#include <algorithm>
#include <functional>
#include <tuple>

#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpoint_schema.h"
#include "checkpoint/hf_import.h"
#include "core/check.h"
#include "core/error.h"
#include "data/prepare.h"
#include "parallel/block_parallel.h"
#include "parallel/grad_sync.h"
#include "parallel/zero_optimizer.h"
#include "recruitment/recruiter.h"

namespace localist {
namespace {

// The tensors a rank of the replica holds a part of: the blocks' and, under bp > 1, the
// FFN's and (vocabulary parallel) the embedding's. Their gradients are complete on the
// rank (not summed over the replica); ZeRO shards their moments over dp only.
bool is_split(const LocalistModel& model, const at::Tensor& t, int64_t bp) {
  return model.is_block_tensor(t) || (bp > 1 && model.is_ffn_split_tensor(t)) ||
         (t.is_same(model.wte) && !model.vocab_whole());
}

// `keep(t)`: whether t goes to torch's AdamW (the rest to the ZeRO optimizers). `params`:
// the AdamW's parameters, decay then no-decay (its order).
std::unique_ptr<torch::optim::AdamW> make_optimizer(LocalistModel& model, const TrainConfig& tc,
                                                    const std::function<bool(const at::Tensor&)>& keep,
                                                    std::vector<at::Tensor>* params) {
  std::vector<at::Tensor> decay = model.decay_parameters(), no_decay = model.no_decay_parameters();
  auto kept = [&](std::vector<at::Tensor>& v) {
    v.erase(std::remove_if(v.begin(), v.end(), [&](const at::Tensor& t) { return !keep(t); }), v.end());
  };
  kept(decay);
  kept(no_decay);
  *params = decay;
  params->insert(params->end(), no_decay.begin(), no_decay.end());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto opts = [&](double wd) {
    auto o = std::make_unique<torch::optim::AdamWOptions>(tc.lr.lr);
    o->betas({tc.beta1, tc.beta2}).weight_decay(wd).eps(1e-8);
    return o;
  };
  groups.emplace_back(decay, opts(tc.weight_decay));
  groups.emplace_back(no_decay, opts(tc.decay_embeddings ? tc.weight_decay : 0.0));
  return std::make_unique<torch::optim::AdamW>(groups);
}

}  // namespace

ModelGroup::ModelGroup(const GroupSetup& s, const CheckpointContents* resumed, const std::string& source_name)
    : setup_(s), mesh_(group_mesh_make(s.ranks, s.block_parallel, s.device)), rules_(s.train.rules, s.model.k_max) {
  // auto: bf16 autocast on CUDA, fp32 on the CPU; bf16: autocast on either device.
  bf16_ = s.train.precision == "bf16" || (s.device.is_cuda() && s.train.precision == "auto");
  // Uneven slices when the batch does not divide: this rank's rows in micro-batches of
  // micro_batch (the last one may be smaller).
  reader_rows(s.train.global_batch);
  make_data();
  const std::string source = source_name.empty() ? s.name : source_name;
  const LlmCheckpoint* from = resumed ? &resumed->llm(source) : nullptr;
  const int64_t read_before = resumed ? resumed->bytes_read : 0;  // the contents may serve several LLMs
  make_model(resumed, from, source);
  make_optimizers(resumed, source, read_before);
  if (s.recruitment.enabled) make_recruiter(resumed, from);
  make_gradient_sync();
}

void ModelGroup::make_data() {
  const GroupSetup& s = setup_;
  const TrainConfig& tc = s.train;
  // Data and tokenizer; the tokenizer must be the one the shards were made with.
  reader_ = std::make_unique<BatchReader>(s.data, s.model.context, s.stream_seed, tc.global_batch,
                                          BatchReader::kDefaultCacheBytes, s.phases);
  std::vector<std::string> training_files;
  for (const auto& src : s.data.sources) {
    if (!src.train) continue;
    training_files.push_back(src.path);
    source_domain_.push_back(src.domain);
  }
  const std::string sp_model = trained_tokenizer_path(s.data);
  tokenizer_ = tokenizer_create(s.data.tokenizer, training_files, sp_model);
  if (tokenizer_->hash() != reader_->shards().front()->meta().tokenizer_hash) {
    throw Error(reader_->shards().front()->path() +
                ": made with another tokenizer than the config's; re-run "
                "`localist prepare --force`");
  }
  token_texts_ = tokenizer_->token_texts();
}

void ModelGroup::make_model(const CheckpointContents* resumed, const LlmCheckpoint* from, const std::string& source) {
  const GroupSetup& s = setup_;
  const TrainConfig& tc = s.train;
  BlockMap planned;  // bp > 1: the block map this group starts under
  model_ = std::make_shared<LocalistModel>(s.model, tokenizer_->vocab_size(), s.seed);
  if (!resumed && !s.model.init_from.path.empty()) {
    // Every rank reads the same file; the broadcast below keeps the guarantee.
    const HfImportSummary imported = hf_import_gpt2(*model_, s.model.init_from.path);
    if (s.lead)
      spdlog::info("model: started from {} ({} tensors; its {} heads are blocks 0-{})", imported.source,
                   imported.tensors, imported.heads, imported.heads / s.model.heads_per_block - 1);
  }
  if (mesh_.ranks->size() > 1) {
    // Identical replicas by construction (same seed); the broadcast makes it a guarantee.
    at::NoGradGuard no_grad;
    for (auto& t : model_->parameters()) mesh_.ranks->broadcast(t, 0, "initial parameters");
  }
  if (resumed && resumed->meta.tokenizer_hash != tokenizer_->hash()) {
    throw Error(resumed->dir + ": trained with another tokenizer than the config's (" + resumed->meta.tokenizer_spec +
                ")");
  }
  whole_parameters_ = model_->parameter_count();  // before the cut: a block-parallel rank holds less
  if (mesh_.bp_size > 1) {
    // Cut to this rank's share before loading, so a resume reads only that share. A
    // resumed map keeps its owners where the mesh allows; otherwise the planner re-places.
    planned = from ? block_map_plan(from->map, from->map.active, mesh_.bp_size)
                   : block_map_initial(active_mask(), mesh_.bp_size);
    const bool vocab =
        block_parallel_splits_vocab(s.vocab_parallel, model_->vocab_size(), tc.micro_batch * s.model.context);
    blocks_ = std::make_unique<BlockParallel>(mesh_.bp_data, *model_, planned, vocab);
    if (s.lead && vocab)
      spdlog::info("vocabulary parallel: {} embedding rows split over {} ranks", model_->vocab_size(), mesh_.bp_size);
    for (const auto& p : model_->parameters()) {
      if (!is_split(*model_, p, mesh_.bp_size)) replica_summed_.push_back(p);
    }
    if (s.lead) spdlog::info("block map {}", blocks_->map().describe());
  }
  if (resumed) {
    // What this rank holds only: a block-parallel rank's blocks, FFN part and rows.
    checkpoint_load_model(*resumed, *model_, source);
    resumed_epoch_ = from->map.epoch;
  }
  model_->to(s.device);
  model_->train();
  const auto& ac = model_->anchor_code();
  if (s.lead)
    spdlog::info(
        "model: {} parameters, {} layers, width {}, {} of {} blocks active x {} heads of {}, anchors {} "
        "(coherence {:.3f}, Welch bound {:.3f}), device {}{}",
        whole_parameters_, s.model.n_layers, s.model.d_model, s.model.k_initial, s.model.k_max, s.model.heads_per_block,
        s.model.head_dim, ac.kind, ac.coherence, ac.welch_bound, s.device.str(), bf16_ ? " (bf16 autocast)" : "");
}

void ModelGroup::make_recruiter(const CheckpointContents* resumed, const LlmCheckpoint* from) {
  const GroupSetup& s = setup_;
  RecruiterSetup rs;
  rs.config = s.recruitment;
  rs.trial = trial_setup();
  rs.moments = moments_;
  rs.rules = &rules_.file_rules();
  rs.total_steps = s.train.steps;
  if (blocks_) {
    // A trial's block lives on the rank the planner will give it if it is kept.
    rs.hold_trial_block = [this](int64_t slot) {
      auto mask = active_mask();
      mask[slot] = 1;
      const int32_t owner = next_map(mask).owner[slot];  // the map place_blocks applies if it is kept
      blocks_->hold_trial(slot, owner);
      return owner;
    };
    rs.drop_trial_block = [this](int64_t slot) { blocks_->drop_trial(slot); };
  }
  recruiter_ = std::make_unique<Recruiter>(rs);
  if (resumed) {
    recruiter_->restore(from->recruitment, from->recruitment_log);
    recruiter_->restore_epoch(resumed_epoch_);
  }
}

ModelGroup::~ModelGroup() = default;

// torch's AdamW and, under ZeRO, the sharded optimizers; the resumed moments loaded.
void ModelGroup::make_optimizers(const CheckpointContents* resumed, const std::string& source, int64_t read_before) {
  const GroupSetup& s = setup_;
  const TrainConfig& tc = s.train;
  // ZeRO over every rank of the group: the replicated parameters' gradients are summed
  // over all of them (bp > 1: each rank of a replica holds its positions' part). The
  // split tensors (blocks; FFN under bp > 1) are sharded over the ranks that hold the
  // same share (dp), when there are several: their moments fall as 1/(bp·dp).
  const ZeroSharding zero(s.zero, mesh_.ranks->size(), mesh_.dp_size);
  const bool sharded = zero.replicated, split_sharded = zero.split;
  auto split = [&](const at::Tensor& t) { return is_split(*model_, t, mesh_.bp_size); };
  optimizer_ = make_optimizer(
      *model_, tc, [&](const at::Tensor& t) { return zero.in_torch_adamw(split(t)); }, &adamw_params_);
  torch_moments_ = adamw_moments(*optimizer_);
  moments_ = [this](const at::Tensor& p) -> std::vector<at::Tensor> {
    if (!zero_split_ || zero_split_->index_of(p) < 0) return torch_moments_(p);
    const auto it = split_moments_.find(p.unsafeGetTensorImpl());
    LOCALIST_CHECK(it != split_moments_.end(), "LLM '", setup_.name,
                   "': the ZeRO moments of the split tensors were not gathered");
    if (!it->second.exp_avg.defined()) return {};
    return {it->second.exp_avg, it->second.exp_avg_sq};
  };
  // The parameters `pick` selects, decay then no-decay (torch's order), with their decay.
  auto zero_params = [&](const std::function<bool(const at::Tensor&)>& pick) {
    std::pair<std::vector<at::Tensor>, std::vector<double>> out;
    for (const auto& p : model_->decay_parameters()) {
      if (pick(p)) out.first.push_back(p), out.second.push_back(tc.weight_decay);
    }
    for (const auto& p : model_->no_decay_parameters()) {
      if (pick(p)) out.first.push_back(p), out.second.push_back(tc.decay_embeddings ? tc.weight_decay : 0.0);
    }
    return out;
  };
  const ZeroAdamW::Options zo{tc.beta1, tc.beta2, 1e-8};
  if (sharded) {
    auto [shared, decay] = zero_params([&](const at::Tensor& t) { return !split(t); });
    zero_ = std::make_unique<ZeroAdamW>(mesh_.ranks_data, shared, decay, zo);
  }
  if (split_sharded) {
    auto [parts, decay] = zero_params(split);
    zero_split_ = std::make_unique<ZeroAdamW>(mesh_.dp_data, parts, decay, zo);
  }
  if (s.lead && sharded) {
    spdlog::info(
        "ZeRO-1: moments of {} replicated parameter tensors sharded over the group's {} ranks, of {} split "
        "tensors over {} data-parallel ranks ({:.2f} MB of moments per rank)",
        zero_->params().size(), mesh_.ranks->size(), zero_split_ ? zero_split_->params().size() : 0, mesh_.dp_size,
        (zero_->state_bytes() + (zero_split_ ? zero_split_->state_bytes() : 0)) / 1e6);
  }
  if (resumed) {
    checkpoint_load_optimizer(*resumed, *model_, *optimizer_, block_map(), mesh_.bp_rank, source,
                              {zero_.get(), zero_split_.get()});
    const auto held = blocks_ ? blocks_->map().owned_by(mesh_.bp_rank) : model_->active_slots();
    int64_t rank_files = 0;
    for (const auto& [name, info] : resumed->files.items()) rank_files += name.rfind("rank-", 0) == 0;
    spdlog::info(
        "resume of LLM '{}': read {} of its active block(s) and {:.2f} MB of tensors from {} ({} of its {} "
        "rank files opened on this rank)",
        setup_.name, held.size(), (resumed->bytes_read - read_before) / 1e6, resumed->dir, resumed->open_files.size(),
        rank_files);
  }
}

void ModelGroup::make_gradient_sync() {
  const GroupSetup& s = setup_;
  const ZeroSharding zero(s.zero, mesh_.ranks->size(), mesh_.dp_size);
  // Gradients are summed over the data-parallel ranks while backward runs (hooks).
  // Under ZeRO the gradients of what it shards are reduce-scattered instead (all of them
  // with several data-parallel ranks).
  if (mesh_.dp_size > 1 && !zero.split) {
    std::vector<at::Tensor> synced;
    for (const auto& p : model_->parameters()) {
      if (zero.synced(is_split(*model_, p, mesh_.bp_size), mesh_.dp_size)) synced.push_back(p);
    }
    grad_sync_ = std::make_unique<GradientSync>(mesh_.dp_data, synced, static_cast<int64_t>(s.bucket_mb * 1024 * 1024));
    if (s.lead) {
      spdlog::info("gradient sync: {} bucket(s), {:.2f} MB per step over {} data-parallel ranks",
                   grad_sync_->bucket_count(), grad_sync_->bytes() / 1e6, mesh_.dp_size);
    }
  }
}

bool ModelGroup::split_part(const at::Tensor& p) const { return blocks_ && model_->held_part(p).has_value(); }

void ModelGroup::assemble_on_lead() {
  if (blocks_ && mesh_.dp_rank == 0) blocks_->assemble_at(0);
}

void ModelGroup::release_assembled() {
  if (blocks_) blocks_->release();
}

void ModelGroup::gather_optimizer_state() {
  release_assembled();  // checkpoints and state moves read the shares; the FFN's whole is gathered here
  gathered_.clear();
  for (const ZeroAdamW* z : {zero_.get(), zero_split_.get()}) {
    if (!z) continue;
    const auto state = z->gather_state("ZeRO moments of LLM '" + setup_.name + "'");
    for (size_t i = 0; i < state.size(); ++i) gathered_[z->params()[i].unsafeGetTensorImpl()] = state[i];
  }
  if (blocks_) {
    // Each rank holds its part of every FFN tensor (and, vocabulary parallel, of the
    // embedding) and of its moments: zeros elsewhere, the parts add up to the whole (exactly).
    at::NoGradGuard no_grad;
    const std::string what = "split tensors of LLM '" + setup_.name + "' (whole, for a checkpoint or a state move)";
    for (const auto& p : model_->parameters()) {
      const auto held = model_->held_part(p);
      if (!held) continue;
      auto whole_of = [&](const at::Tensor& part) {
        auto sizes = part.sizes().vec();
        sizes[held->dim] = held->whole;
        auto whole = at::zeros(sizes, part.options());
        whole.narrow(held->dim, held->begin, part.size(held->dim)).copy_(part);
        mesh_.bp_data->all_reduce(whole, ReduceOp::kSum, what);
        return whole;
      };
      // This rank's part of the moments: torch's AdamW's, or gathered from ZeRO's chunks above.
      FullMoments part;
      if (const auto it = gathered_.find(p.unsafeGetTensorImpl()); it != gathered_.end()) {
        part = it->second;
      } else if (const auto* st = checkpoint_adam_state(*optimizer_, p)) {
        part = FullMoments{st->exp_avg(), st->exp_avg_sq(), st->step(), at::Tensor()};
      }
      FullMoments f;
      f.param = whole_of(p);
      if (part.exp_avg.defined()) {
        f.step = part.step;
        f.exp_avg = whole_of(part.exp_avg);
        f.exp_avg_sq = whole_of(part.exp_avg_sq);
      }
      gathered_[p.unsafeGetTensorImpl()] = f;
    }
  }
  gathered_ready_ = true;
}

void ModelGroup::release_optimizer_state() {
  gathered_.clear();
  gathered_ready_ = false;
}

const FullMoments* ModelGroup::distributed_state(const at::Tensor& p) const {
  if (!((zero_ && zero_->index_of(p) >= 0) || (zero_split_ && zero_split_->index_of(p) >= 0) || split_part(p))) {
    return nullptr;
  }
  const auto it = gathered_.find(p.unsafeGetTensorImpl());
  LOCALIST_CHECK(gathered_ready_ && it != gathered_.end(), "LLM '", setup_.name,
                 "': the optimizer state spread over ranks was not gathered first");
  return &it->second;
}

ModelGroup::Memory ModelGroup::memory() const {
  Memory m;
  for (const auto& p : model_->parameters()) {
    m.parameters += p.numel() * static_cast<int64_t>(p.element_size());
    if (p.grad().defined()) m.gradients += p.grad().numel() * static_cast<int64_t>(p.grad().element_size());
    for (const auto& t : torch_moments_(p)) m.optimizer += t.numel() * static_cast<int64_t>(t.element_size());
  }
  for (const ZeroAdamW* z : {zero_.get(), zero_split_.get()}) {
    if (z) m.optimizer += z->state_bytes(), m.sync_buffers += z->buffer_bytes();
  }
  if (grad_sync_) m.sync_buffers += grad_sync_->bytes();
  return m;
}

void ModelGroup::zero_grad() {
  optimizer_->zero_grad();
  // The same as torch's zero_grad (1.13: a defined gradient is zeroed, not dropped).
  for (const ZeroAdamW* z : {zero_.get(), zero_split_.get()}) {
    if (!z) continue;
    for (const auto& p : z->params()) {
      if (p.grad().defined()) p.mutable_grad().detach_().zero_();
    }
  }
}

void ModelGroup::reader_rows(int64_t global_batch) {
  std::tie(row_begin_, row_end_) = batch_slice(global_batch, mesh_.dp_rank, mesh_.dp_size);
  accum_ = (row_end_ - row_begin_ + setup_.train.micro_batch - 1) / setup_.train.micro_batch;
}

std::vector<uint8_t> ModelGroup::active_mask() const {
  std::vector<uint8_t> mask(setup_.model.k_max, 0);
  for (int64_t slot : model_->active_slots()) mask[slot] = 1;
  return mask;
}

BlockMap ModelGroup::block_map() const {
  if (blocks_) return blocks_->map();
  BlockMap m = block_map_initial(active_mask(), 1);
  m.epoch = recruiter_ ? recruiter_->map_epoch() : resumed_epoch_;
  return m;
}

std::string ModelGroup::row_domain(int64_t step, int32_t source, int64_t start) const {
  return recruiter_ ? recruiter_->training_domain(step, source, start) : source_domain_[source];
}

const RuleSet& ModelGroup::step_rules() {
  static const std::vector<DomainRoute> none;
  return rules_.active(recruiter_ ? recruiter_->domain_routes() : none);
}

TrialSetup ModelGroup::trial_setup() const {
  const TrainConfig& tc = setup_.train;
  TrialSetup t;
  t.model = model_.get();
  t.reader = reader_.get();
  t.source_domains = source_domain_;
  t.ranks = mesh_.ranks;
  if (blocks_) {
    t.sharding.shard = [b = blocks_.get()] { return &b->shard(); };
    t.sharding.same_blocks = mesh_.dp;
  }
  t.sharding.dp_rank = mesh_.dp_rank, t.sharding.dp_size = mesh_.dp_size;
  t.token_texts = &token_texts_;
  t.device = setup_.device;
  t.pad_id = tokenizer_->pad_id();
  t.micro_batch = tc.micro_batch;
  t.checkpoint_activations = tc.activation_checkpointing;
  t.batch = tc.global_batch;
  t.seed = setup_.stream_seed;
  t.beta1 = tc.beta1, t.beta2 = tc.beta2;
  return t;
}

BlockMap ModelGroup::next_map(const std::vector<uint8_t>& active) const {
  return block_map_plan(blocks_->map(), active, mesh_.bp_size);
}

int32_t ModelGroup::place_blocks(int64_t slot) {
  if (!blocks_) return 0;
  // Under block parallelism the planner places the new block on the least-loaded rank
  // (rebalancing past the threshold); parameters and moments move point to point.
  const BlockMap next = next_map(active_mask());
  const int64_t bytes = blocks_->apply(next, moments_);
  if (setup_.lead) spdlog::info("block map {} applied ({} bytes moved)", next.describe(), bytes);
  return next.owner[slot];
}

void ModelGroup::open_split_moments() {
  if (!zero_split_) return;
  const auto state = zero_split_->gather_state("ZeRO moments of the split tensors of LLM '" + setup_.name + "'");
  for (size_t i = 0; i < state.size(); ++i) split_moments_[zero_split_->params()[i].unsafeGetTensorImpl()] = state[i];
}

void ModelGroup::close_split_moments() {
  if (!zero_split_) return;
  std::vector<FullMoments> state;
  for (const auto& p : zero_split_->params()) state.push_back(split_moments_.at(p.unsafeGetTensorImpl()));
  zero_split_->load_state(state);
  split_moments_.clear();
}

nlohmann::json ModelGroup::recruitment_round(int64_t step, const std::vector<double>& dial, double lr) {
  release_assembled();   // probes and trials run on this rank's share, as training does
  open_split_moments();  // blocks moved or switched on change their moments
  nlohmann::json rec = recruiter_->begin_round(step, dial);
  const int64_t pruned = recruiter_->prune(step, dial, rec);
  if (pruned >= 0) place_blocks(pruned);
  const BlockDecision d = recruiter_->try_candidate(step, dial, lr, rec);
  const int32_t owner = d.accepted() ? place_blocks(d.slot) : -1;
  recruiter_->commit(step, d, owner, rec);
  close_split_moments();
  rules_.routes_changed();
  return rec;
}

void ModelGroup::remap_for_test(int64_t step) {
  if (!blocks_) return;
  BlockMap next = blocks_->map();
  ++next.epoch;
  for (auto& o : next.owner) o = o < 0 ? o : (o + 1) % mesh_.bp_size;
  open_split_moments();
  const int64_t bytes = blocks_->apply(next, moments_);
  close_split_moments();
  spdlog::info("block map {} applied at step {} ({} bytes sent)", next.describe(), step, bytes);
}

}  // namespace localist
