// SPDX-License-Identifier: Apache-2.0
// tokenizer.h: the tokenizer interface shared by the byte-level, SentencePiece and
// GPT-2 BPE tokenizers. Every tokenizer has a document-boundary token (written before each
// document in a shard) and a padding token; decode() drops both, so decoding a
// shard's tokens gives back the source text exactly (byte tokenizer: bit for bit).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace localist {

struct TokenizerConfig;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string kind() const = 0;
  virtual uint32_t vocab_size() const = 0;
  virtual uint32_t document_id() const = 0;
  virtual uint32_t pad_id() const = 0;
  // Appends the ids of `text` to `out`.
  virtual void encode(std::string_view text, std::vector<uint32_t>& out) const = 0;
  // Decodes ids, skipping the document and padding tokens.
  virtual std::string decode(const uint32_t* ids, size_t n) const = 0;
  // A JSON description of the exact mapping, stored in every shard.
  virtual std::string spec() const = 0;
  // SHA-256 (hex) identifying the mapping: shards with equal hashes are compatible.
  virtual std::string hash() const = 0;
  // What a checkpoint keeps (as tokenizer_stored_file(kind())) so that the tokenizer
  // loads from the checkpoint alone; "" when nothing is needed.
  virtual std::string stored_contents() const { return ""; }
  std::string decode(const std::vector<uint32_t>& ids) const { return decode(ids.data(), ids.size()); }
  // The bytes each id decodes to on its own ("" for the special tokens), for rules
  // (regex spans) and metrics (bits per byte).
  std::vector<std::string> token_texts() const;
};

// The name of the file a checkpoint keeps for a tokenizer of this kind ("" for none):
// tokenizer.model (SentencePiece), tokenizer.json (BPE).
std::string tokenizer_stored_file(const std::string& kind);

// Builds the configured tokenizer. A SentencePiece tokenizer without a `model` is
// trained on `training_files` and saved to `trained_model_path` (reused when present).
std::unique_ptr<Tokenizer> tokenizer_create(const TokenizerConfig& config,
                                            const std::vector<std::string>& training_files,
                                            const std::string& trained_model_path);

}  // namespace localist
