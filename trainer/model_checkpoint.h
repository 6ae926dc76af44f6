// model_checkpoint.h: single-process model checkpoints, enough for eval and generate:
// a directory with model.pt (LibTorch archive of parameters and buffers), config.yaml
// (the effective run config), meta.json (step, vocabulary, tokenizer, active blocks)
// and, for SentencePiece, tokenizer.model. Written under a temporary name and renamed.
// Limits: the HDF5 checkpoint format with optimizer state and resume is issue #5.
#pragma once
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "model/localist_model.h"

namespace localist {

struct CheckpointMeta {
  int64_t step = 0;
  int64_t tokens_seen = 0;
  int64_t vocab_size = 0;
  uint64_t seed = 0;  // model construction seed (anchor code)
  std::string tokenizer_kind;
  std::string tokenizer_hash;
  std::string tokenizer_spec;
};

// Writes <run_dir>/checkpoints/step-<N>/ and points <run_dir>/checkpoints/latest at it.
std::string model_checkpoint_save(const std::string& run_dir, LocalistModel& model, const CheckpointMeta& meta,
                                  const std::string& config_yaml, const std::string& tokenizer_model_path);

CheckpointMeta model_checkpoint_meta(const std::string& dir);
std::string model_checkpoint_config(const std::string& dir);  // config.yaml text
// Resolves a run directory or checkpoints/latest to a checkpoint directory.
std::string model_checkpoint_resolve(const std::string& path);
std::shared_ptr<LocalistModel> model_checkpoint_load(const std::string& dir, const ModelConfig& config,
                                                     const at::Device& device);

}  // namespace localist
