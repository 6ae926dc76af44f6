// SPDX-License-Identifier: Apache-2.0
// fuzz_hf_source.cpp: the readers of a Hugging Face source (checkpoint/hf_import.h,
// checkpoint/safetensors.h). The input, split at the first 0xFF byte, is config.json and
// model.safetensors; both are written to a scratch directory, the safetensors reader and
// header reader run on the file, and the import's pre-flight check against a tiny GPT-2
// shape (d 8, 2 heads of 4, one layer, context 8, 258 ids); a source that passes is
// imported into a model. Anything but a localist::Error escaping is a bug.
#include <ATen/ATen.h>

#include <fstream>

#include "checkpoint/hf_import.h"
#include "checkpoint/safetensors.h"
#include "core/error.h"
#include "model/localist_model.h"
#include "model/model_config.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

localist::ModelConfig tiny() {
  localist::ModelConfig c;
  c.context = 8;
  c.d_model = 8;
  c.n_layers = 1;
  c.head_dim = 4;
  c.heads_per_block = 1;
  c.k_initial = 2;
  c.k_max = 2;
  c.anchor_dim = 4;
  c.activation = "gelu_tanh";
  return c;
}

void write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

LOCALIST_FUZZ_TARGET(hf_source) {
  const std::string all = localist::fuzz::text_of(data, size);
  const size_t cut = all.find('\xFF');
  const std::string dir = localist::fuzz::scratch_dir();
  write(dir + "/config.json", all.substr(0, cut));
  write(dir + "/model.safetensors", cut == std::string::npos ? "" : all.substr(cut + 1));
  try {
    localist::safetensors_read(dir + "/model.safetensors");
  } catch (const localist::Error&) {
  }
  try {
    localist::safetensors_header(dir + "/model.safetensors");
  } catch (const localist::Error&) {
  }
  const localist::ModelConfig config = tiny();
  try {
    localist::hf_import_check(config, 258, dir);
  } catch (const localist::Error&) {
    return 0;
  }
  static localist::LocalistModel* model = new localist::LocalistModel(config, 258, 1);  // built once
  try {
    localist::hf_import_gpt2(*model, dir);
  } catch (const localist::Error&) {
  }
  return 0;
}
