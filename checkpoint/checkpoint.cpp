// SPDX-License-Identifier: Apache-2.0
// checkpoint.cpp: see checkpoint.h.
#include "checkpoint/checkpoint.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <regex>
#include <sstream>

#include "checkpoint/checkpoint_schema.h"
#include "checkpoint/tensor_file.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/sha256.h"
#include "parallel/optimizer_state.h"

namespace localist {
namespace fs = std::filesystem;
namespace {

at::Tensor need(const CheckpointContents& c, const std::string& name) {
  if (!c.has(name)) {
    throw Error(c.dir + ": tensor '" + name + "' is missing (a rank file from another run or an incomplete copy?)");
  }
  return c.get(name);
}

// The checkpoint's tensor `name` for parameter p (or a moment of it) as this model holds
// p: whole, or on a block-parallel rank its FFN part or its vocabulary rows, read alone.
at::Tensor need_as_held(const CheckpointContents& c, const std::string& name, const LocalistModel& model,
                        const at::Tensor& p) {
  if (!c.has(name)) return need(c, name);
  if (const auto part = model.held_part(p))
    return c.get_part(name, part->dim, part->begin, p.size(part->dim), part->whole);
  return c.get(name);
}

}  // namespace

void checkpoint_clean_partial(const std::string& run_dir) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string n = e.path().filename().string();
    const bool partial_step = n.rfind("step-", 0) == 0 && e.is_directory() && !fs::exists(e.path() / "index.h5");
    if (partial_step || n.find(".tmp.") != std::string::npos) {
      spdlog::warn("removing incomplete checkpoint {} (a write that did not finish)", e.path().string());
      fs::remove_all(e.path(), ec);
    }
  }
}

namespace {

// The index's attributes and datasets into `c` (meta, config, state, each LLM's block map
// and recruitment log, the file list), each checked; a malformed index is an Error.
void read_index(CheckpointContents& c, const TensorFileContents& index, const std::string& index_path) {
  auto attr = [&](const std::string& k) {
    const auto it = index.attrs.find(k);
    if (it == index.attrs.end())
      throw Error(index_path + ": missing attribute '" + k + "' (not a localist checkpoint?)");
    return it->second;
  };
  auto dataset = [&](const std::string& name) {
    const auto it = index.tensors.find(name);
    if (it == index.tensors.end()) throw Error(index_path + ": missing dataset '" + name + "'");
    return it->second;
  };
  try {
    if (attr("format") != kCheckpointFormatName) throw Error(index_path + ": not a localist checkpoint index");
    c.format_version = std::stoll(attr("format_version"));
    if (c.format_version > kCheckpointFormatVersion) {
      throw Error(index_path + ": checkpoint format version " + std::to_string(c.format_version) +
                  " is newer than this build reads (" + std::to_string(kCheckpointFormatVersion) +
                  "); update localist");
    }
    // After the version check: a newer format may checksum differently.
    const std::vector<std::pair<std::string, at::Tensor>> tensors(index.tensors.begin(), index.tensors.end());
    const auto it = index.attrs.find("index_sha256");
    if (it == index.attrs.end() || it->second != checkpoint_index_digest(index.attrs, tensors)) {
      throw Error(index_path + ": fails its SHA-256 check (corrupted or edited)");
    }
    c.meta.step = std::stoll(attr("step"));
    c.meta.tokens_seen = std::stoll(attr("tokens_seen"));
    c.meta.vocab_size = std::stoll(attr("vocab_size"));
    c.meta.seed = std::stoull(attr("seed"));
    c.meta.tokenizer_kind = attr("tokenizer_kind");
    c.meta.tokenizer_hash = attr("tokenizer_hash");
    c.meta.tokenizer_spec = attr("tokenizer_spec");
    if (const auto v = index.attrs.find("localist_version"); v != index.attrs.end()) c.meta.written_by = v->second;
    c.config_yaml = attr("config_yaml");
    c.state = nlohmann::json::parse(attr("state_json"));
    c.files = nlohmann::json::parse(attr("files_json"));
    if (index.tensors.count("rng/cpu")) c.rng_cpu = index.tensors.at("rng/cpu");
    auto text = [&](const std::string& name) {
      const auto bytes = dataset(name).to(at::kByte).contiguous();
      return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), bytes.numel());
    };
    // Format 1 held main alone: its log under "recruitment_log", its recruiter's state in the run state.
    for (const auto& info : nlohmann::json::parse(attr("pool_json"))) {
      LlmCheckpoint l;
      l.name = info.at("name").get<std::string>();
      l.info = info;
      const std::string pre = "block_map/" + l.name + "/";
      const auto active = dataset(pre + "active").to(at::kByte).contiguous();
      const auto owner = dataset(pre + "owner").to(at::kLong);
      l.map.epoch = dataset(pre + "epoch").to(at::kLong).item<int64_t>();
      l.map.active.assign(active.data_ptr<uint8_t>(), active.data_ptr<uint8_t>() + active.numel());
      for (int64_t i = 0; i < owner.numel(); ++i) l.map.owner.push_back(static_cast<int32_t>(owner[i].item<int64_t>()));
      l.map.bp = info.at("block_parallel").get<int32_t>();
      l.map.validate();
      l.recruitment_log = text(c.format_version == 1 ? "recruitment_log" : "recruitment_log/" + l.name);
      l.recruitment =
          c.format_version == 1
              ? c.state.value("recruitment", nlohmann::json())
              : c.state.value("recruitment_by_llm", nlohmann::json::object()).value(l.name, nlohmann::json());
      c.llms.push_back(std::move(l));
    }
    if (c.llms.empty() || c.llms.front().name != "main") throw Error(index_path + ": the pool has no main LLM first");
    for (const auto& [name, info] : c.files.items()) {
      // A file of the checkpoint lives inside its directory: no absolute path, no "..".
      const fs::path rel(name);
      if (name.empty() || rel.is_absolute() ||
          std::any_of(rel.begin(), rel.end(), [](const fs::path& part) { return part == ".." || part == "."; })) {
        throw Error(index_path + ": file entry '" + name + "' is not a path inside the checkpoint directory");
      }
      if (!info.is_object() || !info.contains("bytes") || !info.contains("sha256") ||
          !info.at("bytes").is_number_integer() || !info.at("sha256").is_string()) {
        throw Error(index_path + ": file entry '" + name + "' incomplete");
      }
    }
  } catch (const std::invalid_argument&) {
    throw Error(index_path + ": malformed number in the index");
  } catch (const std::out_of_range&) {
    throw Error(index_path + ": a number in the index is out of range");
  } catch (const nlohmann::json::exception& e) {
    throw Error(index_path + ": malformed JSON in the index (" + e.what() + ")");
  }
}

// Every file must be there, complete and unchanged before anything is used; this rank
// hashes its share of them.
void verify_files(const CheckpointContents& c, const std::string& dir, int verify_rank, int verify_ranks) {
  int file_index = -1;
  for (const auto& [name, info] : c.files.items()) {
    ++file_index;
    const fs::path p = fs::path(dir) / name;
    std::error_code ec;
    if (!fs::exists(p)) throw Error(p.string() + ": missing (the checkpoint lists it); copy the whole directory");
    if (static_cast<int64_t>(fs::file_size(p, ec)) != info.at("bytes").get<int64_t>()) {
      throw Error(p.string() + ": " + std::to_string(fs::file_size(p, ec)) + " bytes, the index says " +
                  std::to_string(info.at("bytes").get<int64_t>()) + " (truncated or replaced)");
    }
    // This rank's share to hash: rank file N by rank N (modulo the ranks), which on the
    // writing mesh is a rank that reads it; the other files in turn.
    const int n = std::max(verify_ranks, 1);
    const bool rank_file =
        name.rfind("rank-", 0) == 0 && name.size() > 5 && std::isdigit(static_cast<unsigned char>(name[5]));
    const bool mine = (rank_file ? std::atoi(name.c_str() + 5) : file_index) % n == verify_rank;
    if (mine && sha256_file(p.string()) != info.at("sha256").get<std::string>()) {
      throw Error(p.string() + ": fails its SHA-256 check (corrupted or from another checkpoint)");
    }
  }
}

// Which rank file holds each tensor (only names: a tensor is read when it is asked for).
void locate_tensors(CheckpointContents& c, const TensorFileContents& index, const std::string& dir) {
  for (const auto& [name, info] : c.files.items()) {
    if (name.rfind("rank-", 0) != 0) continue;
    const std::string path = (fs::path(dir) / name).string();
    // The index lists each file's tensors (checkpoints before it did: the file is opened).
    const auto listed = index.tensors.find("tensor_names/" + name);
    if (listed == index.tensors.end()) {
      for (const auto& k : tensor_file_names(path)) c.located[k] = path;
      continue;
    }
    const auto bytes = listed->second.to(at::kByte).contiguous();
    std::istringstream lines(std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), bytes.numel()));
    for (std::string k; std::getline(lines, k);) {
      if (!k.empty()) c.located[k] = path;
    }
  }
}

}  // namespace

CheckpointContents checkpoint_read(const std::string& dir, bool with_tensors, int verify_rank, int verify_ranks) {
  CheckpointContents c;
  c.dir = dir;
  const std::string index_path = (fs::path(dir) / "index.h5").string();
  if (!fs::exists(index_path)) {
    throw Error(dir + ": no index.h5, so not a complete checkpoint (an interrupted write?)");
  }
  const auto index = tensor_file_read(index_path);
  read_index(c, index, index_path);
  verify_files(c, dir, verify_rank, verify_ranks);
  if (with_tensors) locate_tensors(c, index, dir);
  return c;
}

const TensorFileReader& CheckpointContents::reader_of(const std::string& path) const {
  auto& r = open_files[path];
  if (!r) r = std::make_shared<TensorFileReader>(path);
  return *r;
}

at::Tensor CheckpointContents::get_part(const std::string& name, int64_t dim, int64_t begin, int64_t size,
                                        int64_t whole) const {
  if (const auto it = tensors.find(name); it != tensors.end()) {
    if (it->second.dim() <= dim || it->second.size(dim) != whole) {
      throw Error(dir + ": '" + name + "' does not have " + std::to_string(whole) + " rows along dimension " +
                  std::to_string(dim) + " (a changed model shape cannot resume)");
    }
    return it->second.narrow(dim, begin, size).contiguous();
  }
  if (const auto it = located.find(name); it != located.end()) {
    auto t = reader_of(it->second).read_part(name, dim, begin, size, whole);
    bytes_read += t.numel() * static_cast<int64_t>(t.element_size());
    return t;
  }
  throw Error(dir + ": missing tensor '" + name + "' (written by another version, or damaged)");
}

at::Tensor CheckpointContents::get(const std::string& name) const {
  if (const auto it = tensors.find(name); it != tensors.end()) return it->second;
  if (const auto it = located.find(name); it != located.end()) {
    auto t = reader_of(it->second).read(name);
    bytes_read += t.numel() * static_cast<int64_t>(t.element_size());
    return t;
  }
  throw Error(dir + ": missing tensor '" + name + "' (written by another version, or damaged)");
}

std::vector<std::string> CheckpointContents::names() const {
  std::vector<std::string> out;
  for (const auto& kv : tensors) out.push_back(kv.first);
  for (const auto& kv : located) out.push_back(kv.first);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string checkpoint_resolve(const std::string& path) {
  const fs::path p(path);
  if (fs::exists(p / "index.h5")) return p.string();
  for (const fs::path& root : {p / "checkpoints", p}) {
    if (!fs::exists(root / "latest")) continue;
    std::string name = read_file((root / "latest").string());
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    if (fs::exists(root / name / "index.h5")) return (root / name).string();
  }
  throw Error(path +
              ": not a checkpoint (no index.h5) and no checkpoints/latest inside; pass a run directory or "
              "<run>/checkpoints/step-N");
}

std::unique_ptr<CheckpointContents> checkpoint_read_auto(const std::string& run_dir,
                                                         const std::shared_ptr<Communicator>& world) {
  const bool shared = world && world->size() > 1;
  for (const auto& [step, dir] : checkpoint_committed(fs::path(run_dir) / "checkpoints")) {
    std::unique_ptr<CheckpointContents> c;
    std::string why;
    try {
      c = std::make_unique<CheckpointContents>(
          checkpoint_read(dir.string(), true, shared ? world->rank() : 0, shared ? world->size() : 1));
    } catch (const Error& e) {
      why = e.what();
    }
    if (shared) {  // one verdict for all: a file any rank found damaged rules the checkpoint out
      auto bad = at::tensor(std::vector<int64_t>{why.empty() ? 0 : 1}, at::kLong);
      world->all_reduce(bad, ReduceOp::kMax, "checkpoint verification (" + dir.filename().string() + ")");
      if (bad.item<int64_t>() != 0 && why.empty()) why = "another rank found a damaged file (its log names it)";
    }
    if (why.empty()) return c;
    spdlog::warn("--resume auto: skipping checkpoint {}: {}; trying the previous one", dir.string(), why);
  }
  return nullptr;
}

const LlmCheckpoint& CheckpointContents::llm(const std::string& name) const {
  std::string names;
  for (const auto& l : llms) {
    if (l.name == name) return l;
    names += (names.empty() ? "" : ", ") + l.name;
  }
  throw Error(dir + ": holds no LLM '" + name + "' (its pool: " + names + ")");
}

void checkpoint_load_model(const CheckpointContents& c, LocalistModel& model, const std::string& llm) {
  at::NoGradGuard no_grad;
  const auto& cfg = model.config();
  for (auto& kv : model.named_parameters()) {
    if (checkpoint_is_block_name(kv.key())) continue;
    const auto t =
        need_as_held(c, fmt::format("model/{}/shared/{}", llm, checkpoint_slash_path(kv.key())), model, kv.value());
    if (t.sizes() != kv.value().sizes()) {
      throw Error(
          fmt::format("{}: '{}' has shape {} in the checkpoint but {} in this model's config (a changed "
                      "model shape cannot resume)",
                      c.dir, kv.key(), fmt::join(t.sizes(), "x"), fmt::join(kv.value().sizes(), "x")));
    }
    kv.value().copy_(t);
  }
  for (auto& kv : model.named_buffers()) {
    kv.value().copy_(need(c, fmt::format("model/{}/buffers/{}", llm, checkpoint_slash_path(kv.key()))));
  }
  const BlockMap& map = c.llm(llm).map;
  if (map.slots() != cfg.k_max) {
    throw Error(c.dir + ": " + std::to_string(map.slots()) + " block slots, but this model's k_max is " +
                std::to_string(cfg.k_max));
  }
  for (int64_t slot = 0; slot < cfg.k_max; ++slot) {
    for (size_t l = 0; l < model.layers.size(); ++l) {
      auto& L = *model.layers[l];
      if (!L.blocks_whole() && L.slot_row[slot] < 0) continue;  // another rank's block: not read here
      std::vector<at::Tensor> parts;
      for (const auto& k : kCheckpointBlockParams) {
        parts.push_back(need(c, checkpoint_block_prefix("model", llm, slot, l) + k));
      }
      checkpoint_block_assign(L.qkv_w, L.qkv_b, L.out_w, cfg, L.row(slot), parts,
                              c.dir + ": block " + std::to_string(slot));
    }
  }
}

MomentsOf adamw_moments(torch::optim::AdamW& optimizer) {
  return [&optimizer](const at::Tensor& p) -> std::vector<at::Tensor> {
    auto* st = checkpoint_adam_state(optimizer, p);
    if (!st) return {};
    return {st->exp_avg(), st->exp_avg_sq()};
  };
}

std::shared_ptr<LocalistModel> checkpoint_model(const CheckpointContents& c, const ModelConfig& config,
                                                const at::Device& device, const std::string& llm) {
  auto model = std::make_shared<LocalistModel>(config, c.meta.vocab_size, c.meta.seed);
  checkpoint_load_model(c, *model, llm);
  model->to(device);
  return model;
}

void checkpoint_load_optimizer(const CheckpointContents& c, LocalistModel& model, torch::optim::AdamW& optimizer,
                               const BlockMap& map, int bp_rank, const std::string& llm,
                               const std::vector<OptimizerState*>& others) {
  at::NoGradGuard no_grad;
  const auto& cfg = model.config();
  auto install = [&](const at::Tensor& p, const at::Tensor& m1, const at::Tensor& m2, int64_t step) {
    auto st = std::make_unique<torch::optim::AdamWParamState>();
    st->step(step);
    st->exp_avg(m1.to(p.device()).clone());
    st->exp_avg_sq(m2.to(p.device()).clone());
    optimizer.state()[static_cast<void*>(p.unsafeGetTensorImpl())] = std::move(st);
  };
  std::vector<std::map<const void*, FullMoments>> kept(others.size());
  // Into the first other optimizer that keeps p; else torch's AdamW.
  auto place = [&](const at::Tensor& p, const at::Tensor& m1, const at::Tensor& m2, int64_t step) {
    for (size_t k = 0; k < others.size(); ++k) {
      if (others[k] && others[k]->keeps(p)) {
        kept[k][p.unsafeGetTensorImpl()] = FullMoments{m1, m2, step};
        return;
      }
    }
    install(p, m1, m2, step);
  };
  for (auto& kv : model.named_parameters()) {
    if (checkpoint_is_block_name(kv.key())) continue;
    const std::string pre = fmt::format("optim/{}/shared/{}/", llm, checkpoint_slash_path(kv.key()));
    if (!c.has(pre + "step")) continue;  // no state yet for this parameter (e.g. unused router)
    const at::Tensor m1 = need_as_held(c, pre + "exp_avg", model, kv.value()),
                     m2 = need_as_held(c, pre + "exp_avg_sq", model, kv.value());
    const int64_t step = need(c, pre + "step").item<int64_t>();
    if (m1.sizes() != kv.value().sizes() || m2.sizes() != kv.value().sizes()) {
      throw Error(c.dir + ": the optimizer state of '" + kv.key() + "' does not have the parameter's shape");
    }
    place(kv.value(), m1, m2, step);
  }
  for (size_t l = 0; l < model.layers.size(); ++l) {
    auto& L = *model.layers[l];
    const std::vector<at::Tensor> params{L.qkv_w, L.qkv_b, L.out_w};
    // Moments of the tensors this rank holds: its blocks under the new map (at their rows).
    std::vector<at::Tensor> m1, m2;
    int64_t step = -1;
    for (const auto& p : params) m1.push_back(at::zeros_like(p)), m2.push_back(at::zeros_like(p));
    for (int64_t slot = 0; slot < cfg.k_max; ++slot) {
      const std::string pre = checkpoint_block_prefix("optim", llm, slot, l);
      const int owner = map.active[slot] ? map.owner[slot] : 0;
      if (L.blocks_whole() ? owner != bp_rank : L.slot_row[slot] < 0) continue;  // another rank's block
      if (!c.has(pre + "qkv_weight/step")) continue;
      step = need(c, pre + "qkv_weight/step").item<int64_t>();
      std::vector<at::Tensor> a, b;
      for (const auto& k : kCheckpointBlockParams)
        a.push_back(need(c, pre + k + "/exp_avg")), b.push_back(need(c, pre + k + "/exp_avg_sq"));
      const std::string where = c.dir + ": optimizer state of block " + std::to_string(slot);
      checkpoint_block_assign(m1[0], m1[1], m1[2], cfg, L.row(slot), a, where);
      checkpoint_block_assign(m2[0], m2[1], m2[2], cfg, L.row(slot), b, where);
    }
    if (step < 0) continue;
    for (size_t k = 0; k < 3; ++k) place(params[k], m1[k], m2[k], step);
  }
  for (size_t k = 0; k < others.size(); ++k) {
    if (others[k]) others[k]->load_moments(kept[k]);
  }
}

}  // namespace localist
