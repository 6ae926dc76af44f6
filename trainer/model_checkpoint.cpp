// model_checkpoint.cpp: see model_checkpoint.h.
#include "trainer/model_checkpoint.h"

#include <torch/serialize/archive.h>

#include <filesystem>
#include <unistd.h>

#include "core/error.h"
#include "core/file_util.h"

namespace localist {
namespace fs = std::filesystem;

std::string model_checkpoint_save(const std::string& run_dir, LocalistModel& model, const CheckpointMeta& meta,
                                  const std::string& config_yaml, const std::string& tokenizer_model_path) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  const fs::path final_dir = root / ("step-" + std::to_string(meta.step));
  const fs::path tmp = root / (".step-" + std::to_string(meta.step) + ".tmp." + std::to_string(::getpid()));
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) throw Error(tmp.string() + ": cannot create checkpoint directory: " + ec.message());
  try {
    torch::serialize::OutputArchive archive;
    model.save(archive);
    archive.save_to((tmp / "model.pt").string());
    write_file_atomic((tmp / "config.yaml").string(), config_yaml);
    nlohmann::json j = {{"format", "localist-model-checkpoint"}, {"format_version", 1},
                        {"step", meta.step}, {"tokens_seen", meta.tokens_seen}, {"vocab_size", meta.vocab_size}, {"seed", meta.seed},
                        {"tokenizer_kind", meta.tokenizer_kind}, {"tokenizer_hash", meta.tokenizer_hash},
                        {"tokenizer_spec", meta.tokenizer_spec}, {"active_slots", model.active_slots()}};
    write_file_atomic((tmp / "meta.json").string(), j.dump(2) + "\n");
    if (!tokenizer_model_path.empty()) fs::copy_file(tokenizer_model_path, tmp / "tokenizer.model");
    fs::remove_all(final_dir, ec);
    fs::rename(tmp, final_dir);
  } catch (const std::exception& e) {
    fs::remove_all(tmp, ec);
    throw Error(final_dir.string() + ": writing the checkpoint failed: " + e.what());
  }
  write_file_atomic((root / "latest").string(), final_dir.filename().string() + "\n");
  return final_dir.string();
}

std::string model_checkpoint_resolve(const std::string& path) {
  fs::path p(path);
  if (fs::exists(p / "meta.json")) return p.string();
  for (const fs::path& root : {p / "checkpoints", p}) {
    if (fs::exists(root / "latest")) {
      std::string name = read_file((root / "latest").string());
      while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
      if (fs::exists(root / name / "meta.json")) return (root / name).string();
    }
  }
  throw Error(path + ": not a checkpoint (no meta.json) and no checkpoints/latest inside; pass a run directory or "
                     "<run>/checkpoints/step-N");
}

CheckpointMeta model_checkpoint_meta(const std::string& dir) {
  CheckpointMeta m;
  try {
    const auto j = nlohmann::json::parse(read_file(dir + "/meta.json"));
    if (j.at("format") != "localist-model-checkpoint") throw Error("not a localist model checkpoint");
    m.step = j.at("step");
    m.tokens_seen = j.at("tokens_seen");
    m.vocab_size = j.at("vocab_size");
    m.seed = j.at("seed");
    m.tokenizer_kind = j.at("tokenizer_kind");
    m.tokenizer_hash = j.at("tokenizer_hash");
    m.tokenizer_spec = j.at("tokenizer_spec");
  } catch (const nlohmann::json::exception& e) {
    throw Error(dir + "/meta.json: malformed checkpoint metadata (" + e.what() + ")");
  }
  return m;
}

std::string model_checkpoint_config(const std::string& dir) { return read_file(dir + "/config.yaml"); }

std::shared_ptr<LocalistModel> model_checkpoint_load(const std::string& dir, const ModelConfig& config,
                                                     const at::Device& device) {
  const CheckpointMeta meta = model_checkpoint_meta(dir);
  auto model = std::make_shared<LocalistModel>(config, meta.vocab_size, meta.seed);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(dir + "/model.pt");
    model->load(archive);
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    throw Error(dir + "/model.pt: cannot load the model weights (" + what + ")");
  }
  model->to(device);
  return model;
}

}  // namespace localist
