// checkpoint.cpp: see checkpoint.h.
#include "trainer/checkpoint.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <regex>

#include "core/error.h"
#include "core/file_util.h"
#include "core/sha256.h"
#include "trainer/block_parallel.h"
#include "trainer/tensor_file.h"

namespace localist {
namespace fs = std::filesystem;
namespace {

const char* kFormatName = "localist-checkpoint";
const char* kLlm = "main";
const std::vector<std::string> kBlockParams{"qkv_weight", "qkv_bias", "out_weight"};

std::string slash_path(std::string key) {
  std::replace(key.begin(), key.end(), '.', '/');
  return key;
}

bool is_block_name(const std::string& key) {
  for (const auto& b : kBlockParams) {
    if (key.size() > b.size() && key.compare(key.size() - b.size(), b.size(), b) == 0 && key[key.size() - b.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

std::string step_dir_name(int64_t step) { return fmt::format("step-{:08d}", step); }

// The three block tensors of one layer in checkpoint form: (3,n,d), (3,n), (d,n) views.
std::vector<at::Tensor> block_parts(const at::Tensor& w, const at::Tensor& b, const at::Tensor& o,
                                    const ModelConfig& c, int64_t slot) {
  const auto v = block_slot_views(w, b, o, c, slot);
  return {at::stack({v[0], v[1], v[2]}), at::stack({v[3], v[4], v[5]}), v[6]};
}

// Writes `parts` (checkpoint form) into the slot's views of w, b, o.
void block_assign(const at::Tensor& w, const at::Tensor& b, const at::Tensor& o, const ModelConfig& c, int64_t slot,
                  const std::vector<at::Tensor>& parts, const std::string& where) {
  auto v = block_slot_views(w, b, o, c, slot);
  for (int j = 0; j < 3; ++j) {
    if (parts[0].dim() != 3 || parts[0].size(0) != 3 || parts[0][j].sizes() != v[j].sizes() ||
        parts[1].dim() != 2 || parts[1][j].sizes() != v[3 + j].sizes() || parts[2].sizes() != v[6].sizes()) {
      throw Error(where + ": block tensors have another shape than this model's (was it trained with another "
                          "d_model, heads_per_block or head_dim?)");
    }
    v[j].copy_(parts[0][j]);
    v[3 + j].copy_(parts[1][j]);
  }
  v[6].copy_(parts[2]);
}

torch::optim::AdamWParamState* adam_state(torch::optim::AdamW& opt, const at::Tensor& p) {
  const auto it = opt.state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
  return it == opt.state().end() ? nullptr : static_cast<torch::optim::AdamWParamState*>(it->second.get());
}

std::string block_prefix(const char* kind, int64_t slot, size_t layer) {
  return fmt::format("{}/{}/block/{}/layer{}/", kind, kLlm, slot, layer);
}

at::Tensor need(const CheckpointContents& c, const std::string& name) {
  const auto it = c.tensors.find(name);
  if (it == c.tensors.end()) {
    throw Error(c.dir + ": tensor '" + name + "' is missing (a rank file from another run or an incomplete copy?)");
  }
  return it->second;
}

// Committed checkpoints (step directories with an index) under root, newest first.
std::vector<std::pair<int64_t, fs::path>> committed_checkpoints(const fs::path& root) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return found;
  const std::regex name("step-(\\d+)");
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::smatch m;
    const std::string n = e.path().filename().string();
    if (std::regex_match(n, m, name) && fs::exists(e.path() / "index.h5")) found.emplace_back(std::stoll(m[1]), e.path());
  }
  std::sort(found.rbegin(), found.rend());
  return found;
}

// NOTE(index checksum): the index holds every other file's SHA-256 but cannot hold its
// own; it carries a SHA-256 of its content instead (every attribute and dataset in name
// order), so a changed byte in the config, state or block map is caught too.
std::string index_digest(const TensorFileAttrs& attrs, const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::string text;
  for (const auto& [k, v] : attrs) {
    if (k != "index_sha256") text += k + "=" + std::to_string(v.size()) + ":" + v + "\n";
  }
  auto sorted = tensors;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [k, t_in] : sorted) {
    const auto t = t_in.contiguous();
    text += k + "=" + std::to_string(t.numel() * t.element_size()) + ":";
    text.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  }
  return sha256_hex(text);
}

}  // namespace

std::string checkpoint_save(const CheckpointWrite& w) {
  Communicator& world = *w.world;
  LocalistModel& model = *w.model;
  const auto& cfg = model.config();
  const fs::path root = fs::path(w.run_dir) / "checkpoints";
  const fs::path dir = root / step_dir_name(w.meta.step);
  std::error_code ec;
  if (world.rank() == 0) {
    if (fs::exists(dir / "index.h5")) fs::remove(dir / "index.h5", ec);  // un-commit before rewriting
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    if (ec) throw Error(dir.string() + ": cannot create checkpoint directory: " + ec.message());
  }
  auto point = [&](const char* name) {
    if (w.on_point) w.on_point(name);
  };
  world.barrier("checkpoint step " + std::to_string(w.meta.step) + " directory");
  point("directory");

  // Writers: world rank 0 (shared tensors) and the first replica's BP ranks (blocks).
  const bool writer = w.dp_rank == 0;
  std::string file_name;
  if (writer) {
    at::NoGradGuard no_grad;
    std::vector<std::pair<std::string, at::Tensor>> out;
    auto add_optim = [&](const std::string& prefix, const at::Tensor& p, const std::function<at::Tensor(const at::Tensor&)>& part) {
      if (!w.optimizer) return;
      auto* st = adam_state(*w.optimizer, p);
      if (!st) return;
      out.emplace_back(prefix + "exp_avg", part(st->exp_avg()));
      out.emplace_back(prefix + "exp_avg_sq", part(st->exp_avg_sq()));
      out.emplace_back(prefix + "step", at::tensor(st->step(), at::kLong));
    };
    if (world.rank() == 0) {
      for (const auto& kv : model.named_parameters()) {
        if (is_block_name(kv.key())) continue;
        out.emplace_back(fmt::format("model/{}/shared/{}", kLlm, slash_path(kv.key())), kv.value());
        add_optim(fmt::format("optim/{}/shared/{}/", kLlm, slash_path(kv.key())), kv.value(),
                  [](const at::Tensor& t) { return t; });
      }
      for (const auto& kv : model.named_buffers()) {
        out.emplace_back(fmt::format("model/{}/buffers/{}", kLlm, slash_path(kv.key())), kv.value());
      }
    }
    // Each block is written by its owner; inactive slots (no owner) by BP rank 0.
    for (int64_t slot = 0; slot < cfg.k_max; ++slot) {
      const int owner = w.map.active[slot] ? w.map.owner[slot] : 0;
      if (owner != w.bp_rank) continue;
      for (size_t l = 0; l < model.layers.size(); ++l) {
        auto& L = *model.layers[l];
        const auto parts = block_parts(L.qkv_w, L.qkv_b, L.out_w, cfg, slot);
        for (size_t k = 0; k < 3; ++k) out.emplace_back(block_prefix("model", slot, l) + kBlockParams[k], parts[k]);
        if (!w.optimizer) continue;
        auto *sw = adam_state(*w.optimizer, L.qkv_w), *sb = adam_state(*w.optimizer, L.qkv_b),
             *so = adam_state(*w.optimizer, L.out_w);
        if (!sw || !sb || !so) continue;
        const auto m1 = block_parts(sw->exp_avg(), sb->exp_avg(), so->exp_avg(), cfg, slot);
        const auto m2 = block_parts(sw->exp_avg_sq(), sb->exp_avg_sq(), so->exp_avg_sq(), cfg, slot);
        const int64_t steps[3] = {sw->step(), sb->step(), so->step()};
        for (size_t k = 0; k < 3; ++k) {
          const std::string pre = block_prefix("optim", slot, l) + kBlockParams[k] + "/";
          out.emplace_back(pre + "exp_avg", m1[k]);
          out.emplace_back(pre + "exp_avg_sq", m2[k]);
          out.emplace_back(pre + "step", at::tensor(steps[k], at::kLong));
        }
      }
    }
    file_name = fmt::format("rank-{:05d}.h5", world.rank());
    tensor_file_write((dir / file_name).string(), out,
                      {{"format", kFormatName}, {"written_by_world_rank", std::to_string(world.rank())},
                       {"step", std::to_string(w.meta.step)}, {"run", w.state.value("run_id", std::string())}});
  }
  point("rank-file");
  // Every rank's file digest to rank 0 (non-writers send zeros).
  auto digest = at::zeros({72}, at::kByte);
  if (writer) {
    const std::string hex = sha256_file((dir / file_name).string());
    std::memcpy(digest.data_ptr(), hex.data(), 64);
    const int64_t bytes = static_cast<int64_t>(fs::file_size(dir / file_name));
    std::memcpy(static_cast<uint8_t*>(digest.data_ptr()) + 64, &bytes, 8);
  }
  const auto all = world.all_gather(digest, "checkpoint step " + std::to_string(w.meta.step) + " checksums");
  if (world.rank() == 0) {
    nlohmann::json files = nlohmann::json::object();
    for (int r = 0; r < world.size(); ++r) {
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
    if (!w.tokenizer_model_path.empty()) {
      write_file_atomic((dir / "tokenizer.model").string(), read_file(w.tokenizer_model_path));
      files["tokenizer.model"] = {{"sha256", sha256_file((dir / "tokenizer.model").string())},
                                  {"bytes", fs::file_size(dir / "tokenizer.model")}};
    }
    std::vector<std::pair<std::string, at::Tensor>> index;
    index.emplace_back(fmt::format("block_map/{}/active", kLlm),
                       at::tensor(std::vector<int64_t>(w.map.active.begin(), w.map.active.end()), at::kLong).to(at::kByte));
    index.emplace_back(fmt::format("block_map/{}/owner", kLlm),
                       at::tensor(std::vector<int64_t>(w.map.owner.begin(), w.map.owner.end()), at::kLong));
    index.emplace_back(fmt::format("block_map/{}/epoch", kLlm), at::tensor(w.map.epoch, at::kLong));
    index.emplace_back("recruitment_log", at::empty({0}, at::kByte));  // JSON lines, one per decision (issue #6)
    const nlohmann::json pool = nlohmann::json::array({{{"name", kLlm}, {"block_parallel", w.map.bp}}});
    point("before-index");
    TensorFileAttrs attrs{{"format", kFormatName},
                       {"format_version", std::to_string(kCheckpointFormatVersion)},
                       {"step", std::to_string(w.meta.step)},
                       {"tokens_seen", std::to_string(w.meta.tokens_seen)},
                       {"vocab_size", std::to_string(w.meta.vocab_size)},
                       {"seed", std::to_string(w.meta.seed)},
                       {"tokenizer_kind", w.meta.tokenizer_kind},
                       {"tokenizer_hash", w.meta.tokenizer_hash},
                       {"tokenizer_spec", w.meta.tokenizer_spec},
                       {"config_yaml", w.config_yaml},
                       {"state_json", w.state.dump()},
                       {"pool_json", pool.dump()},
                       {"files_json", files.dump()}};
    attrs["index_sha256"] = index_digest(attrs, index);
    tensor_file_write((dir / "index.h5").string(), index, attrs);
    point("after-index");
    write_file_atomic((root / "latest").string(), dir.filename().string() + "\n");
    spdlog::info("checkpoint {} written ({} files)", dir.string(), files.size() + 1);
    // Keep the newest keep_last complete checkpoints, and every keep_every-th forever.
    const auto done = committed_checkpoints(root);
    for (size_t i = static_cast<size_t>(std::max<int64_t>(w.keep_last, 1)); i < done.size(); ++i) {
      if (w.keep_every > 0 && done[i].first % w.keep_every == 0) continue;
      fs::remove(done[i].second / "index.h5", ec);  // un-commit first, then delete
      fs::remove_all(done[i].second, ec);
    }
  }
  world.barrier("checkpoint step " + std::to_string(w.meta.step) + " committed");
  return dir.string();
}

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

CheckpointContents checkpoint_read(const std::string& dir, bool with_tensors) {
  CheckpointContents c;
  c.dir = dir;
  const std::string index_path = (fs::path(dir) / "index.h5").string();
  if (!fs::exists(index_path)) {
    throw Error(dir + ": no index.h5, so not a complete checkpoint (an interrupted write?)");
  }
  const auto index = tensor_file_read(index_path);
  auto attr = [&](const std::string& k) {
    const auto it = index.attrs.find(k);
    if (it == index.attrs.end()) throw Error(index_path + ": missing attribute '" + k + "' (not a localist checkpoint?)");
    return it->second;
  };
  auto dataset = [&](const std::string& name) {
    const auto it = index.tensors.find(name);
    if (it == index.tensors.end()) throw Error(index_path + ": missing dataset '" + name + "'");
    return it->second;
  };
  try {
    if (attr("format") != kFormatName) throw Error(index_path + ": not a localist checkpoint index");
    c.format_version = std::stoll(attr("format_version"));
    if (c.format_version > kCheckpointFormatVersion) {
      throw Error(index_path + ": checkpoint format version " + std::to_string(c.format_version) +
                  " is newer than this build reads (" + std::to_string(kCheckpointFormatVersion) + "); update localist");
    }
    // After the version check: a newer format may checksum differently.
    const std::vector<std::pair<std::string, at::Tensor>> tensors(index.tensors.begin(), index.tensors.end());
    const auto it = index.attrs.find("index_sha256");
    if (it == index.attrs.end() || it->second != index_digest(index.attrs, tensors)) {
      throw Error(index_path + ": fails its SHA-256 check (corrupted or edited)");
    }
    c.meta.step = std::stoll(attr("step"));
    c.meta.tokens_seen = std::stoll(attr("tokens_seen"));
    c.meta.vocab_size = std::stoll(attr("vocab_size"));
    c.meta.seed = std::stoull(attr("seed"));
    c.meta.tokenizer_kind = attr("tokenizer_kind");
    c.meta.tokenizer_hash = attr("tokenizer_hash");
    c.meta.tokenizer_spec = attr("tokenizer_spec");
    c.config_yaml = attr("config_yaml");
    c.state = nlohmann::json::parse(attr("state_json"));
    c.files = nlohmann::json::parse(attr("files_json"));
    const auto active = dataset(std::string("block_map/") + kLlm + "/active").to(at::kByte).contiguous();
    const auto owner = dataset(std::string("block_map/") + kLlm + "/owner").to(at::kLong);
    c.map.epoch = dataset(std::string("block_map/") + kLlm + "/epoch").to(at::kLong).item<int64_t>();
    c.map.active.assign(active.data_ptr<uint8_t>(), active.data_ptr<uint8_t>() + active.numel());
    for (int64_t i = 0; i < owner.numel(); ++i) c.map.owner.push_back(static_cast<int32_t>(owner[i].item<int64_t>()));
    c.map.bp = nlohmann::json::parse(attr("pool_json")).at(0).at("block_parallel").get<int32_t>();
    c.map.validate();
    for (const auto& [name, info] : c.files.items()) {
      if (!info.contains("bytes") || !info.contains("sha256")) throw Error(index_path + ": file entry '" + name + "' incomplete");
    }
  } catch (const std::invalid_argument&) {
    throw Error(index_path + ": malformed number in the index");
  } catch (const nlohmann::json::exception& e) {
    throw Error(index_path + ": malformed JSON in the index (" + e.what() + ")");
  }
  // Every file must be there, complete and unchanged before anything is used.
  for (const auto& [name, info] : c.files.items()) {
    const fs::path p = fs::path(dir) / name;
    std::error_code ec;
    if (!fs::exists(p)) throw Error(p.string() + ": missing (the checkpoint lists it); copy the whole directory");
    if (static_cast<int64_t>(fs::file_size(p, ec)) != info.at("bytes").get<int64_t>()) {
      throw Error(p.string() + ": " + std::to_string(fs::file_size(p, ec)) + " bytes, the index says " +
                  std::to_string(info.at("bytes").get<int64_t>()) + " (truncated or replaced)");
    }
    if (sha256_file(p.string()) != info.at("sha256").get<std::string>()) {
      throw Error(p.string() + ": fails its SHA-256 check (corrupted or from another checkpoint)");
    }
  }
  if (with_tensors) {
    for (const auto& [name, info] : c.files.items()) {
      if (name.rfind("rank-", 0) != 0) continue;
      auto f = tensor_file_read((fs::path(dir) / name).string());
      for (auto& [k, t] : f.tensors) c.tensors[k] = t;
    }
  }
  return c;
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
  throw Error(path + ": not a checkpoint (no index.h5) and no checkpoints/latest inside; pass a run directory or "
                     "<run>/checkpoints/step-N");
}

std::unique_ptr<CheckpointContents> checkpoint_read_auto(const std::string& run_dir) {
  for (const auto& [step, dir] : committed_checkpoints(fs::path(run_dir) / "checkpoints")) {
    try {
      return std::make_unique<CheckpointContents>(checkpoint_read(dir.string()));
    } catch (const Error& e) {
      spdlog::warn("--resume auto: skipping checkpoint {}: {}; trying the previous one", dir.string(), e.what());
    }
  }
  return nullptr;
}

void checkpoint_load_model(const CheckpointContents& c, LocalistModel& model) {
  at::NoGradGuard no_grad;
  const auto& cfg = model.config();
  for (auto& kv : model.named_parameters()) {
    if (is_block_name(kv.key())) continue;
    const auto t = need(c, fmt::format("model/{}/shared/{}", kLlm, slash_path(kv.key())));
    if (t.sizes() != kv.value().sizes()) {
      throw Error(fmt::format("{}: '{}' has shape {} in the checkpoint but {} in this model's config (a changed "
                              "model shape cannot resume)", c.dir, kv.key(), fmt::join(t.sizes(), "x"),
                              fmt::join(kv.value().sizes(), "x")));
    }
    kv.value().copy_(t);
  }
  for (auto& kv : model.named_buffers()) {
    kv.value().copy_(need(c, fmt::format("model/{}/buffers/{}", kLlm, slash_path(kv.key()))));
  }
  if (c.map.slots() != cfg.k_max) {
    throw Error(c.dir + ": " + std::to_string(c.map.slots()) + " block slots, but this model's k_max is " +
                std::to_string(cfg.k_max));
  }
  for (int64_t slot = 0; slot < cfg.k_max; ++slot) {
    for (size_t l = 0; l < model.layers.size(); ++l) {
      auto& L = *model.layers[l];
      std::vector<at::Tensor> parts;
      for (const auto& k : kBlockParams) parts.push_back(need(c, block_prefix("model", slot, l) + k));
      block_assign(L.qkv_w, L.qkv_b, L.out_w, cfg, slot, parts, c.dir + ": block " + std::to_string(slot));
    }
  }
}

MomentsOf adamw_moments(torch::optim::AdamW& optimizer) {
  return [&optimizer](const at::Tensor& p) -> std::vector<at::Tensor> {
    auto* st = adam_state(optimizer, p);
    if (!st) return {};
    return {st->exp_avg(), st->exp_avg_sq()};
  };
}

std::shared_ptr<LocalistModel> checkpoint_model(const CheckpointContents& c, const ModelConfig& config,
                                                const at::Device& device) {
  auto model = std::make_shared<LocalistModel>(config, c.meta.vocab_size, c.meta.seed);
  checkpoint_load_model(c, *model);
  model->to(device);
  return model;
}

void checkpoint_load_optimizer(const CheckpointContents& c, LocalistModel& model, torch::optim::AdamW& optimizer,
                               const BlockMap& map, int bp_rank) {
  at::NoGradGuard no_grad;
  const auto& cfg = model.config();
  auto install = [&](const at::Tensor& p, const at::Tensor& m1, const at::Tensor& m2, int64_t step) {
    auto st = std::make_unique<torch::optim::AdamWParamState>();
    st->step(step);
    st->exp_avg(m1.to(p.device()).clone());
    st->exp_avg_sq(m2.to(p.device()).clone());
    optimizer.state()[c10::guts::to_string(p.unsafeGetTensorImpl())] = std::move(st);
  };
  for (auto& kv : model.named_parameters()) {
    if (is_block_name(kv.key())) continue;
    const std::string pre = fmt::format("optim/{}/shared/{}/", kLlm, slash_path(kv.key()));
    if (!c.tensors.count(pre + "step")) continue;  // no state yet for this parameter (e.g. unused router)
    install(kv.value(), need(c, pre + "exp_avg"), need(c, pre + "exp_avg_sq"), need(c, pre + "step").item<int64_t>());
  }
  for (size_t l = 0; l < model.layers.size(); ++l) {
    auto& L = *model.layers[l];
    const std::vector<at::Tensor> params{L.qkv_w, L.qkv_b, L.out_w};
    // Full-size moments: zero except the blocks this rank owns under the new map.
    std::vector<at::Tensor> m1, m2;
    int64_t step = -1;
    for (const auto& p : params) m1.push_back(at::zeros_like(p)), m2.push_back(at::zeros_like(p));
    for (int64_t slot = 0; slot < cfg.k_max; ++slot) {
      const std::string pre = block_prefix("optim", slot, l);
      if (!c.tensors.count(pre + "qkv_weight/step")) continue;
      step = need(c, pre + "qkv_weight/step").item<int64_t>();
      const int owner = map.active[slot] ? map.owner[slot] : 0;
      if (owner != bp_rank) continue;
      std::vector<at::Tensor> a, b;
      for (const auto& k : kBlockParams) a.push_back(need(c, pre + k + "/exp_avg")), b.push_back(need(c, pre + k + "/exp_avg_sq"));
      const std::string where = c.dir + ": optimizer state of block " + std::to_string(slot);
      block_assign(m1[0], m1[1], m1[2], cfg, slot, a, where);
      block_assign(m2[0], m2[1], m2[2], cfg, slot, b, where);
    }
    if (step < 0) continue;
    for (size_t k = 0; k < 3; ++k) install(params[k], m1[k], m2[k], step);
  }
}

}  // namespace localist
