// SPDX-License-Identifier: Apache-2.0
// tokenizer.cpp: the factory that turns a TokenizerConfig into a tokenizer.
#include "data/tokenizer.h"

#include <sys/stat.h>

#include "core/error.h"
#include "data/bpe_tokenizer.h"
#include "data/byte_tokenizer.h"
#include "data/data_config.h"
#include "data/sentencepiece_tokenizer.h"

namespace localist {

std::vector<std::string> Tokenizer::token_texts() const {
  std::vector<std::string> out(vocab_size());
  for (uint32_t id = 0; id < vocab_size(); ++id) out[id] = decode(&id, 1);
  return out;
}

std::string tokenizer_stored_file(const std::string& kind) {
  return kind == "sentencepiece" ? "tokenizer.model" : kind == "bpe" ? "tokenizer.json" : "";
}

std::unique_ptr<Tokenizer> tokenizer_create(const TokenizerConfig& config,
                                            const std::vector<std::string>& training_files,
                                            const std::string& trained_model_path) {
  if (config.kind == "byte") return std::make_unique<ByteTokenizer>();
  if (config.kind == "sentencepiece") {
    if (!config.model.empty()) return SentencePieceTokenizer::load(config.model);
    struct stat st {};
    if (::stat(trained_model_path.c_str(), &st) != 0) {
      SentencePieceTokenizer::train(training_files, config.vocab_size, config.model_type, trained_model_path);
    }
    return SentencePieceTokenizer::load(trained_model_path);
  }
  if (config.kind == "bpe") {
    if (config.model.empty())
      throw ConfigError("data.tokenizer.model: kind bpe needs the tokenizer's files (tokenizer.json, or a directory)");
    return BpeTokenizer::load(config.model);
  }
  throw ConfigError("data.tokenizer.kind: '" + config.kind + "' is not one of: byte, sentencepiece, bpe");
}

}  // namespace localist
