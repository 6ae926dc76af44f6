// SPDX-License-Identifier: Apache-2.0
// sentencepiece_tokenizer.h: subword tokenizer on Debian's SentencePiece. Trained
// models use identity normalisation, no dummy prefix, kept whitespace and byte
// fallback, so decode(encode(text)) == text for any UTF-8 text. Ids: 0 unk,
// 1 document boundary (SentencePiece's bos), 2 padding. SentencePiece itself runs in
// the helper process localist-spm (spm_protocol.h says why).
#pragma once
#include <memory>

#include "data/tokenizer.h"

namespace localist {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Loads a .model file; throws localist::Error naming the file if it is unusable
  // (including models without bos/pad ids).
  static std::unique_ptr<SentencePieceTokenizer> load(const std::string& model_path);
  // Trains a model from UTF-8 text files (one thread: deterministic) and writes it to
  // `model_path` atomically.
  static void train(const std::vector<std::string>& files, int64_t vocab_size, const std::string& model_type,
                    const std::string& model_path);
  ~SentencePieceTokenizer() override;

  std::string kind() const override { return "sentencepiece"; }
  uint32_t vocab_size() const override { return vocab_size_; }
  uint32_t document_id() const override { return document_id_; }
  uint32_t pad_id() const override { return pad_id_; }
  void encode(std::string_view text, std::vector<uint32_t>& out) const override;
  using Tokenizer::decode;
  std::string decode(const uint32_t* ids, size_t n) const override;
  std::string spec() const override;
  std::string hash() const override { return hash_; }
  std::string stored_contents() const override;

 private:
  SentencePieceTokenizer() = default;
  class Helper;
  std::unique_ptr<Helper> helper_;
  uint32_t vocab_size_ = 0;
  uint32_t document_id_ = 0;
  uint32_t pad_id_ = 0;
  std::string hash_;
  std::string model_path_;
};

}  // namespace localist
