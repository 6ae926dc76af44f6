// SPDX-License-Identifier: Apache-2.0
// bpe_tokenizer.h: GPT-2's byte-level BPE (data.tokenizer.kind: bpe), read from the files
// Hugging Face writes (tokenizer.json, or vocab.json + merges.txt), giving the ids
// Hugging Face tokenizers gives. <|endoftext|> is the document boundary; the padding id
// is one past the vocabulary (never produced, never embedded: it only marks ignored targets).
// Limits: GPT-2's layout only (ByteLevel pre-tokenizer and decoder without prefix space,
// no normalizer, no dropout, no unknown token); special tokens written in the text are
// encoded as text (docs/decisions.md says why).
#pragma once
#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/tokenizer.h"

namespace localist {

class BpeTokenizer : public Tokenizer {
 public:
  static constexpr const char* kDocumentToken = "<|endoftext|>";

  // `path`: a tokenizer.json, or a directory with tokenizer.json or with vocab.json and
  // merges.txt. Throws ConfigError naming the file (and the entry) on anything else.
  static std::unique_ptr<BpeTokenizer> load(const std::string& path);
  // The same from the files' contents; `where` names them in errors.
  static std::unique_ptr<BpeTokenizer> from_tokenizer_json(const std::string& json, const std::string& where);
  static std::unique_ptr<BpeTokenizer> from_vocab_merges(const std::string& vocab_json, const std::string& merges_txt,
                                                         const std::string& where);

  std::string kind() const override { return "bpe"; }
  uint32_t vocab_size() const override { return static_cast<uint32_t>(id_bytes_.size()); }
  uint32_t document_id() const override { return document_id_; }
  uint32_t pad_id() const override { return vocab_size(); }
  void encode(std::string_view text, std::vector<uint32_t>& out) const override;
  using Tokenizer::decode;
  std::string decode(const uint32_t* ids, size_t n) const override;
  std::string spec() const override;
  std::string hash() const override { return hash_; }
  std::string stored_contents() const override { return canonical_json_; }

 private:
  struct Merge {
    uint32_t rank;
    uint32_t id;
  };
  BpeTokenizer() = default;
  // Takes the vocabulary, merges (as token pairs, in rank order) and special tokens,
  // checks them and builds the tables; `where` names the source in errors.
  void build(std::vector<std::pair<std::string, int64_t>> vocab,
             const std::vector<std::pair<std::string, std::string>>& merges,
             const std::vector<std::pair<std::string, int64_t>>& specials, bool ignore_merges,
             const std::string& where);
  void write_canonical(const std::vector<std::pair<std::string, std::string>>& merges);
  void encode_piece(std::string_view piece, std::vector<uint32_t>& out) const;

  std::unordered_map<std::string, uint32_t> token_id_;  // byte-level text -> id
  std::vector<std::string> id_token_;                   // id -> byte-level text ("" for holes)
  std::vector<std::string> id_bytes_;                   // id -> the bytes it decodes to
  std::vector<bool> special_;                           // decode drops these
  std::unordered_map<uint64_t, Merge> merges_;          // (left id << 32 | right id) -> merge
  std::array<uint32_t, 256> byte_id_{};
  bool ignore_merges_ = false;
  uint32_t document_id_ = 0;
  std::string canonical_json_;
  std::string hash_;
  // Pieces repeat (words), so their ids are kept; cleared when it grows large.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<uint32_t>> cache_;
};

}  // namespace localist
