// SPDX-License-Identifier: Apache-2.0
// checkpoint_writer.cpp: see checkpoint_writer.h. The background thread only writes and
// hashes this rank's file; every collective (directory barrier, RNG gather, checksum
// gather, commit barrier) runs on the calling thread, so MPI needs no thread support.
#include "checkpoint/checkpoint_writer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "checkpoint/checkpoint_schema.h"
#include "checkpoint/tensor_file.h"
#include "comm/messages.h"
#include "core/build_info.h"
#include "core/check.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/sha256.h"
#include "parallel/optimizer_state.h"

namespace localist {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// This rank's share of one LLM: its lead the shared tensors and buffers; in the first
// replica, each block's owner that block (inactive slots: BP rank 0). With `copy`, every
// tensor is a host copy that later training steps cannot change.
}  // namespace

void checkpoint_llm_tensors(const LlmWrite& w, bool copy, std::vector<std::pair<std::string, at::Tensor>>& out) {
  at::NoGradGuard no_grad;
  LocalistModel& model = *w.model;
  const auto& cfg = model.config();
  const std::string& llm = w.name;
  if (w.dp_rank != 0) return;
  // fresh: already a new tensor (a stack of slot views), so moving it to the host suffices.
  auto own = [copy](const at::Tensor& t, bool fresh = false) {
    if (!copy) return t;
    return fresh ? t.to(at::kCPU) : t.detach().to(at::kCPU, /*non_blocking=*/false, /*copy=*/true);
  };
  // Disjoint names per LLM, so several LLMs share one rank file.
  auto add_optim = [&](const std::string& prefix, const at::Tensor& p) {
    if (const FullMoments* whole = w.distributed_state ? w.distributed_state(p) : nullptr) {
      const FullMoments& f = *whole;
      if (!f.exp_avg.defined()) return;
      out.emplace_back(prefix + "exp_avg", own(f.exp_avg, true));
      out.emplace_back(prefix + "exp_avg_sq", own(f.exp_avg_sq, true));
      out.emplace_back(prefix + "step", at::tensor(f.step, at::kLong));
      return;
    }
    auto* st = w.optimizer ? checkpoint_adam_state(*w.optimizer, p) : nullptr;
    if (!st) return;
    out.emplace_back(prefix + "exp_avg", own(st->exp_avg()));
    out.emplace_back(prefix + "exp_avg_sq", own(st->exp_avg_sq()));
    out.emplace_back(prefix + "step", at::tensor(st->step(), at::kLong));
  };
  if (w.lead) {
    for (const auto& kv : model.named_parameters()) {
      if (checkpoint_is_block_name(kv.key())) continue;
      // A block-parallel rank holds a part of each FFN tensor: the whole was gathered.
      const FullMoments* whole = w.distributed_state ? w.distributed_state(kv.value()) : nullptr;
      const bool gathered = whole && whole->param.defined();
      out.emplace_back(fmt::format("model/{}/shared/{}", llm, checkpoint_slash_path(kv.key())),
                       gathered ? own(whole->param, true) : own(kv.value()));
      add_optim(fmt::format("optim/{}/shared/{}/", llm, checkpoint_slash_path(kv.key())), kv.value());
    }
    for (const auto& kv : model.named_buffers()) {
      out.emplace_back(fmt::format("model/{}/buffers/{}", llm, checkpoint_slash_path(kv.key())), own(kv.value()));
    }
  }
  const auto& names = kCheckpointBlockParams;
  for (int64_t slot = 0; slot < cfg.k_max; ++slot) {
    const int owner = w.map.active[slot] ? w.map.owner[slot] : 0;
    if (owner != w.bp_rank) continue;
    for (size_t l = 0; l < model.layers.size(); ++l) {
      auto& L = *model.layers[l];
      // A block-parallel rank holds only its active blocks: an inactive slot it does not
      // hold is written as zeros (its values are never read: a block switched on is drawn afresh).
      const bool held = L.blocks_whole() || L.slot_row[slot] >= 0;
      if (!held) {
        const auto zero = checkpoint_block_parts(L.qkv_w, L.qkv_b, L.out_w, cfg, 0);
        for (size_t k = 0; k < 3; ++k) {
          out.emplace_back(checkpoint_block_prefix("model", llm, slot, l) + names[k],
                           at::zeros(zero[k].sizes(), zero[k].options().device(at::kCPU)));
        }
        continue;
      }
      const int64_t row = L.row(slot);
      const auto parts = checkpoint_block_parts(L.qkv_w, L.qkv_b, L.out_w, cfg, row);
      for (size_t k = 0; k < 3; ++k) {
        out.emplace_back(checkpoint_block_prefix("model", llm, slot, l) + names[k], own(parts[k], k < 2));
      }
      // The block tensors' moments: gathered from ZeRO's chunks, or torch's AdamW's.
      auto state_of = [&](const at::Tensor& p) {
        if (const FullMoments* d = w.distributed_state ? w.distributed_state(p) : nullptr) return *d;
        const auto* st = w.optimizer ? checkpoint_adam_state(*w.optimizer, p) : nullptr;
        return st ? FullMoments{st->exp_avg(), st->exp_avg_sq(), st->step()} : FullMoments{};
      };
      const FullMoments sw = state_of(L.qkv_w), sb = state_of(L.qkv_b), so = state_of(L.out_w);
      if (!sw.exp_avg.defined() || !sb.exp_avg.defined() || !so.exp_avg.defined()) continue;
      const auto m1 = checkpoint_block_parts(sw.exp_avg, sb.exp_avg, so.exp_avg, cfg, row);
      const auto m2 = checkpoint_block_parts(sw.exp_avg_sq, sb.exp_avg_sq, so.exp_avg_sq, cfg, row);
      const int64_t steps[3] = {sw.step, sb.step, so.step};
      for (size_t k = 0; k < 3; ++k) {
        const std::string pre = checkpoint_block_prefix("optim", llm, slot, l) + names[k] + "/";
        out.emplace_back(pre + "exp_avg", own(m1[k], k < 2));
        out.emplace_back(pre + "exp_avg_sq", own(m2[k], k < 2));
        out.emplace_back(pre + "step", at::tensor(steps[k], at::kLong));
      }
    }
  }
}

namespace {

// The index entry of each LLM this rank leads (JSON: name, map, log, recruiter state, info).
std::string led_entries(const CheckpointWrite& w) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& l : w.llms) {
    if (!l.lead) continue;
    out.push_back({{"name", l.name},
                   {"active", l.map.active},
                   {"owner", l.map.owner},
                   {"epoch", l.map.epoch},
                   {"bp", l.map.bp},
                   {"log", l.recruitment_log},
                   {"recruitment", l.recruitment},
                   {"info", l.info}});
  }
  return out.dump();
}

at::Tensor cpu_generator_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state().contiguous();
}

}  // namespace

CheckpointWriter::~CheckpointWriter() {
  if (thread_.joinable()) thread_.join();
}

bool CheckpointWriter::local_done() const { return !pending_ || done_.load(); }

void CheckpointWriter::join() {
  if (thread_.joinable()) thread_.join();
  if (error_) {
    auto e = error_;
    error_ = nullptr;
    pending_ = false;
    std::rethrow_exception(e);
  }
}

void CheckpointWriter::start(const CheckpointWrite& w) {
  if (pending_) finish();
  const auto t0 = Clock::now();
  Communicator& world = *w.world;
  const fs::path root = fs::path(w.run_dir) / "checkpoints";
  const fs::path dir = root / checkpoint_step_dir_name(w.meta.step);
  if (world.rank() == 0) {
    std::error_code ec;
    if (fs::exists(dir / "index.h5")) fs::remove(dir / "index.h5", ec);  // un-commit before rewriting
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    if (ec) throw Error(dir.string() + ": cannot create checkpoint directory: " + ec.message());
  }
  w_ = w;
  for (auto& l : w_.llms)
    l.model = nullptr, l.optimizer = nullptr;  // not touched after this call: the writer thread owns copies
  dir_ = dir.string();
  const std::string tag = "checkpoint step " + std::to_string(w.meta.step);
  world.barrier(tag + " directory");
  if (w.on_point) w.on_point("directory");
  // Every rank's generator state, for the index (exact resume on the same world size).
  const auto rng = world.all_gather(cpu_generator_state(), tag + " RNG states");
  rng_states_ = world.rank() == 0 ? rng : at::Tensor();

  // Writers: for each LLM, the ranks of its first replica (its lead writes the shared tensors).
  file_name_.clear();
  out_.clear();
  names_.clear();
  sha256_.clear();
  bytes_ = 0;
  pending_ = true;
  done_ = true;
  if (std::none_of(w.llms.begin(), w.llms.end(), [](const LlmWrite& l) { return l.dp_rank == 0; })) {
    start_ms_ = ms_since(t0);
    return;
  }
  file_name_ = fmt::format("rank-{:05d}.h5", world.rank());
  // The host copy is the only part an asynchronous checkpoint makes training wait for.
  const auto tc = Clock::now();
  for (const auto& l : w.llms) checkpoint_llm_tensors(l, async_, out_);
  for (const auto& [name, t] : out_) names_ += name + "\n";
  copy_ms_ = async_ ? ms_since(tc) : 0.0;
  start_ms_ = ms_since(t0);
  const TensorFileAttrs attrs{{"format", kCheckpointFormatName},
                              {"written_by_world_rank", std::to_string(world.rank())},
                              {"step", std::to_string(w.meta.step)}};
  auto write = [this, attrs, t0] {
    const std::string path = (fs::path(dir_) / file_name_).string();
    tensor_file_write(path, out_, attrs);
    sha256_ = sha256_file(path);
    bytes_ = static_cast<int64_t>(fs::file_size(path));
    out_.clear();  // release the host copies now
    write_ms_ = ms_since(t0);
  };
  if (!async_) {
    write();
    start_ms_ = ms_since(t0);
    return;
  }
  done_ = false;
  thread_ = std::thread([this, write] {
    try {
      write();
    } catch (...) {
      error_ = std::current_exception();
    }
    done_ = true;
  });
}

namespace {

// Rank 0's list of the checkpoint's files: each writing rank's file (from the gathered
// digests: SHA-256 and size), then the config and the tokenizer, written here.
nlohmann::json committed_files(const at::Tensor& all, int world_size, const CheckpointWrite& w, const fs::path& dir) {
  nlohmann::json files = nlohmann::json::object();
  for (int r = 0; r < world_size; ++r) {
    const auto row = all[r];
    const auto* p = static_cast<const uint8_t*>(row.data_ptr());
    if (p[0] == 0) continue;
    int64_t bytes = 0;
    std::memcpy(&bytes, p + 64, 8);
    files[fmt::format("rank-{:05d}.h5", r)] = {{"sha256", std::string(reinterpret_cast<const char*>(p), 64)},
                                               {"bytes", bytes}};
  }
  write_file_atomic((dir / "config.yaml").string(), w.config_yaml);
  files["config.yaml"] = {{"sha256", sha256_hex(w.config_yaml)}, {"bytes", w.config_yaml.size()}};
  if (!w.tokenizer_file.empty()) {
    write_file_atomic((dir / w.tokenizer_file).string(), w.tokenizer_contents);
    files[w.tokenizer_file] = {{"sha256", sha256_hex(w.tokenizer_contents)}, {"bytes", w.tokenizer_contents.size()}};
  }
  return files;
}

// The index's per-LLM part: block maps and recruitment logs as datasets, the pool's
// entries (pool order) and each LLM's recruiter state in the run state.
void llm_index(const std::vector<std::string>& entries, std::vector<std::pair<std::string, at::Tensor>>& index,
               nlohmann::json& pool, nlohmann::json& state) {
  std::vector<nlohmann::json> llms;
  for (const auto& e : entries) {
    for (const auto& l : nlohmann::json::parse(e)) llms.push_back(l);
  }
  std::stable_sort(llms.begin(), llms.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a["info"].value("order", 0) < b["info"].value("order", 0);
  });
  state["recruitment_by_llm"] = nlohmann::json::object();
  for (const auto& l : llms) {
    const std::string pre = "block_map/" + l["name"].get<std::string>() + "/";
    const auto active = l["active"].get<std::vector<int64_t>>(), owner = l["owner"].get<std::vector<int64_t>>();
    index.emplace_back(pre + "active", at::tensor(active, at::kLong).to(at::kByte));
    index.emplace_back(pre + "owner", at::tensor(owner, at::kLong));
    index.emplace_back(pre + "epoch", at::tensor(l["epoch"].get<int64_t>(), at::kLong));
    // JSON lines, one per recruitment decision (accepted, rejected, pruned).
    const std::string log = l["log"].get<std::string>();
    index.emplace_back("recruitment_log/" + l["name"].get<std::string>(),
                       at::tensor(std::vector<uint8_t>(log.begin(), log.end()), at::kByte));
    state["recruitment_by_llm"][l["name"].get<std::string>()] = l["recruitment"];
    nlohmann::json info = l["info"];
    info["name"] = l["name"];
    info["block_parallel"] = l["bp"];
    info.erase("order");
    pool.push_back(info);
  }
}

// Keeps the newest keep_last complete checkpoints under root, and every keep_every-th
// forever.
void prune_checkpoints(const fs::path& root, int64_t keep_last, int64_t keep_every) {
  const auto done = checkpoint_committed(root);
  std::error_code ec;
  for (size_t i = static_cast<size_t>(std::max<int64_t>(keep_last, 1)); i < done.size(); ++i) {
    if (keep_every > 0 && done[i].first % keep_every == 0) continue;
    fs::remove(done[i].second / "index.h5", ec);  // un-commit first, then delete
    fs::remove_all(done[i].second, ec);
  }
}

}  // namespace

std::string CheckpointWriter::finish() {
  LOCALIST_CHECK(pending_, "checkpoint writer: finish() without start()");
  join();
  pending_ = false;
  Communicator& world = *w_.world;
  const CheckpointWrite& w = w_;
  const fs::path dir(dir_), root = dir.parent_path();
  const std::string tag = "checkpoint step " + std::to_string(w.meta.step);
  auto point = [&](const char* name) {
    if (w.on_point) w.on_point(name);
  };
  point("rank-file");
  // Every rank's file digest to rank 0 (non-writers send zeros).
  auto digest = at::zeros({72}, at::kByte);
  if (!file_name_.empty()) {
    std::memcpy(digest.data_ptr(), sha256_.data(), 64);
    std::memcpy(static_cast<uint8_t*>(digest.data_ptr()) + 64, &bytes_, 8);
  }
  const auto all = world.all_gather(digest, tag + " checksums");
  // Every LLM's index entry from its lead (the coordinator need not train it).
  const auto entries = all_gather_strings(world, led_entries(w), tag + " LLM entries");
  const auto names = all_gather_strings(world, names_, tag + " tensor names");
  if (world.rank() == 0) {
    nlohmann::json files = committed_files(all, world.size(), w, dir);
    std::vector<std::pair<std::string, at::Tensor>> index;
    nlohmann::json pool = nlohmann::json::array(), state = w.state;
    llm_index(entries, index, pool, state);
    index.emplace_back("rng/cpu", rng_states_);  // (world size, state bytes)
    // Which rank file holds which tensor (names, one per line): a resuming rank opens
    // only the files of the tensors it loads.
    for (int r = 0; r < world.size(); ++r) {
      const std::string file = fmt::format("rank-{:05d}.h5", r);
      if (!files.contains(file)) continue;
      const std::string& n = names[r];
      index.emplace_back("tensor_names/" + file, at::tensor(std::vector<uint8_t>(n.begin(), n.end()), at::kByte));
    }
    point("before-index");
    TensorFileAttrs attrs{{"format", kCheckpointFormatName},
                          {"format_version", std::to_string(kCheckpointFormatVersion)},
                          {"localist_version", fmt::format("{} (commit {})", build_version(), build_commit())},
                          {"step", std::to_string(w.meta.step)},
                          {"tokens_seen", std::to_string(w.meta.tokens_seen)},
                          {"vocab_size", std::to_string(w.meta.vocab_size)},
                          {"seed", std::to_string(w.meta.seed)},
                          {"tokenizer_kind", w.meta.tokenizer_kind},
                          {"tokenizer_hash", w.meta.tokenizer_hash},
                          {"tokenizer_spec", w.meta.tokenizer_spec},
                          {"config_yaml", w.config_yaml},
                          {"state_json", state.dump()},
                          {"pool_json", pool.dump()},
                          {"files_json", files.dump()}};
    attrs["index_sha256"] = checkpoint_index_digest(attrs, index);
    tensor_file_write((dir / "index.h5").string(), index, attrs);
    point("after-index");
    write_file_atomic((root / "latest").string(), dir.filename().string() + "\n");
    spdlog::info("checkpoint {} written ({} files; training waited {:.1f} ms{})", dir.string(), files.size() + 1,
                 start_ms_, async_ ? fmt::format(", rank files on disk after {:.1f} ms", write_ms_) : "");
    prune_checkpoints(root, w.keep_last, w.keep_every);
  }
  world.barrier(tag + " committed");
  rng_states_ = at::Tensor();
  return dir_;
}

std::string checkpoint_save(const CheckpointWrite& w) {
  CheckpointWriter writer(false);
  writer.start(w);
  return writer.finish();
}

}  // namespace localist
