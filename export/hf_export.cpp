// SPDX-License-Identifier: Apache-2.0
// hf_export.cpp: see hf_export.h. The tensor names follow the modules of
// export/hf/modeling_localist.py; docs/export.md maps each to localist's.
#include "export/hf_export.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <filesystem>

#include "checkpoint/safetensors.h"
#include "core/build_info.h"
#include "core/error.h"
#include "core/file_util.h"
#include "data/bpe_tokenizer.h"
#include "data/byte_level.h"

namespace localist {
namespace fs = std::filesystem;
namespace {

const char* kDocumentToken = "<|document|>";
const char* kPadToken = "<|pad|>";

nlohmann::json byte_tokenizer_json(const Tokenizer& t) {
  nlohmann::json vocab = nlohmann::json::object();
  const auto& alphabet = byte_level_alphabet();
  for (int b = 0; b < 256; ++b) vocab[alphabet[b]] = b;
  vocab[kDocumentToken] = t.document_id();
  vocab[kPadToken] = t.pad_id();
  auto special = [](const char* text, uint32_t id) {
    return nlohmann::json{{"id", id},        {"content", text},     {"single_word", false}, {"lstrip", false},
                          {"rstrip", false}, {"normalized", false}, {"special", true}};
  };
  const nlohmann::json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", {special(kDocumentToken, t.document_id()), special(kPadToken, t.pad_id())}},
          {"normalizer", nullptr},
          {"pre_tokenizer", byte_level},
          {"post_processor", nullptr},
          {"decoder", byte_level},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", false},
            {"vocab", vocab},
            {"merges", nlohmann::json::array()}}}};
}

}  // namespace

uint32_t hf_pad_token_id(const Tokenizer& t) { return t.pad_id() < t.vocab_size() ? t.pad_id() : t.document_id(); }

void hf_write_tokenizer(const Tokenizer& t, int64_t context, const std::string& dir) {
  nlohmann::json cfg = {{"model_max_length", context},
                        {"add_bos_token", false},
                        {"add_eos_token", false},
                        {"clean_up_tokenization_spaces", false}};
  if (t.kind() == "byte") {
    write_file_atomic(dir + "/tokenizer.json", byte_tokenizer_json(t).dump(1));
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast";
    cfg["eos_token"] = kDocumentToken, cfg["bos_token"] = kDocumentToken, cfg["pad_token"] = kPadToken;
  } else if (t.kind() == "bpe") {  // GPT-2's own tokenizer class reads it, no remote code
    write_file_atomic(dir + "/tokenizer.json", t.stored_contents());
    cfg["tokenizer_class"] = "GPT2TokenizerFast";
    cfg["eos_token"] = BpeTokenizer::kDocumentToken, cfg["bos_token"] = BpeTokenizer::kDocumentToken;
    cfg["unk_token"] = BpeTokenizer::kDocumentToken;
  } else {
    write_file_atomic(dir + "/tokenizer.model", t.stored_contents());
    write_file_atomic(dir + "/tokenization_localist.py", hf_tokenization_py());
    cfg["tokenizer_class"] = "LocalistSentencePieceTokenizer";
    cfg["auto_map"] = {{"AutoTokenizer", {"tokenization_localist.LocalistSentencePieceTokenizer", nullptr}}};
  }
  write_file_atomic(dir + "/tokenizer_config.json", cfg.dump(2) + "\n");
}

std::vector<std::pair<std::string, at::Tensor>> hf_tensors(const LocalistModel& m) {
  if (!m.vocab_whole()) throw Error("export: the model holds only part of its vocabulary; assemble it first");
  std::vector<std::pair<std::string, at::Tensor>> out = {{"model.wte.weight", m.wte},
                                                         {"model.wpe.weight", m.wpe},
                                                         {"model.lnf.weight", m.lnf_w},
                                                         {"model.lnf.bias", m.lnf_b}};
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const LocalistLayer& L = *m.layers[l];
    if (!L.blocks_whole() || !L.ffn_whole()) throw Error("export: layer " + std::to_string(l) + " is not whole");
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const std::vector<std::pair<const char*, at::Tensor>> named = {{"ln1.weight", L.ln1_w},
                                                                   {"ln1.bias", L.ln1_b},
                                                                   {"router.weight", L.router_w},
                                                                   {"attention.qkv.weight", L.qkv_w},
                                                                   {"attention.qkv.bias", L.qkv_b},
                                                                   {"attention.out.weight", L.out_w},
                                                                   {"attention.out.bias", L.out_b},
                                                                   {"ln2.weight", L.ln2_w},
                                                                   {"ln2.bias", L.ln2_b},
                                                                   {"fc.weight", L.fc_w},
                                                                   {"fc.bias", L.fc_b},
                                                                   {"proj.weight", L.proj_w},
                                                                   {"proj.bias", L.proj_b}};
    for (const auto& [name, t] : named) out.emplace_back(p + name, t);
  }
  return out;
}

nlohmann::json hf_config(const HfExportSpec& s) {
  const ModelConfig& c = s.model->config();
  nlohmann::json routes = nlohmann::json::object();
  for (const auto& r : s.domain_routes) routes[r.domain] = r.slot;
  const bool uniform = std::all_of(s.dial.begin(), s.dial.end(), [&](double v) { return v == s.dial.front(); });
  const Tokenizer& t = *s.tokenizer;
  return {{"model_type", "localist"},
          {"architectures", {"LocalistForCausalLM"}},
          {"auto_map",
           {{"AutoConfig", "configuration_localist.LocalistConfig"},
            {"AutoModelForCausalLM", "modeling_localist.LocalistForCausalLM"}}},
          {"vocab_size", s.model->vocab_size()},
          {"d_model", c.d_model},
          {"n_layers", c.n_layers},
          {"context", c.context},
          {"heads_per_block", c.heads_per_block},
          {"head_dim", c.head_dim},
          {"k_max", c.k_max},
          {"anchor_dim", c.anchor_dim},
          {"ffn_mult", c.ffn_mult},
          {"tau", c.tau},
          {"gamma", c.gamma},
          {"rho", c.rho},
          {"layer_norm_eps", c.layer_norm_eps},
          {"activation", c.activation},
          {"anchors", s.model->anchor_code().values},
          {"anchor_kind", s.model->anchor_code().kind},
          {"active_blocks", s.model->active_slots()},
          {"dial", s.dial.empty() ? nlohmann::json(0.0)
                   : uniform      ? nlohmann::json(s.dial.front())
                                  : nlohmann::json(s.dial)},
          {"domain_routes", routes},
          {"document_id", t.document_id()},
          {"pad_id", hf_pad_token_id(t)},
          {"dtype", s.dtype == "bf16" ? "bfloat16" : "float32"},
          {"tie_word_embeddings", true},
          {"localist", s.localist}};
}

void hf_write_weights_and_tokenizer(std::vector<std::pair<std::string, at::Tensor>> tensors, const std::string& dtype,
                                    const Tokenizer& tokenizer, int64_t context, const std::string& dir) {
  if (dtype != "fp32" && dtype != "bf16") throw ConfigError("--dtype: " + dtype + " is not fp32 or bf16");
  if (dtype == "bf16")
    for (auto& [name, t] : tensors) t = t.to(at::kBFloat16);
  safetensors_write(dir + "/model.safetensors", tensors,
                    {{"format", "pt"},
                     {"producer", std::string("localist ") + build_version() + " (commit " + build_commit() + ")"}});
  const nlohmann::json generation = {{"bos_token_id", tokenizer.document_id()},
                                     {"eos_token_id", tokenizer.document_id()},
                                     {"pad_token_id", hf_pad_token_id(tokenizer)},
                                     {"do_sample", false}};
  write_file_atomic(dir + "/generation_config.json", generation.dump(2) + "\n");
  hf_write_tokenizer(tokenizer, context, dir);
}

void hf_write_model(const HfExportSpec& s, const std::string& dir) {
  if (!s.model || !s.tokenizer) throw Error("export: internal error: no model or tokenizer to export");
  hf_write_weights_and_tokenizer(hf_tensors(*s.model), s.dtype, *s.tokenizer, s.model->config().context, dir);
  write_file_atomic(dir + "/config.json", hf_config(s).dump(2) + "\n");
  write_file_atomic(dir + "/configuration_localist.py", hf_configuration_py());
  write_file_atomic(dir + "/modeling_localist.py", hf_modeling_py());
  write_file_atomic(dir + "/README.md", s.model_card);
}

void hf_export_atomically(const std::string& out, const std::function<void(const std::string&)>& write) {
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec) || !fs::is_empty(out, ec)) {
      throw ConfigError("--out " + out + ": exists and is not an empty directory; choose a new path or remove it");
    }
  }
  const fs::path target = fs::absolute(out);
  if (!target.parent_path().empty() && !fs::exists(target.parent_path(), ec)) {
    fs::create_directories(target.parent_path(), ec);
    if (ec) throw Error("--out " + out + ": cannot create its parent directory (" + ec.message() + ")");
  }
  const std::string tmp = target.string() + ".tmp." + std::to_string(::getpid());
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec)) throw Error("export: cannot create " + tmp + " (" + ec.message() + ")");
  try {
    write(tmp);
    if (fs::exists(target, ec)) fs::remove(target, ec);  // the empty directory it replaces
    fs::rename(tmp, target, ec);
    if (ec) throw Error("export: cannot rename " + tmp + " to " + target.string() + " (" + ec.message() + ")");
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace localist
