// SPDX-License-Identifier: Apache-2.0
// byte_tokenizer.h: byte-level tokenizer: ids 0..255 are bytes, 256 is the document
// boundary, 257 is padding. Lossless for any byte string.
#pragma once
#include "data/tokenizer.h"

namespace localist {

class ByteTokenizer : public Tokenizer {
 public:
  static constexpr uint32_t kDocument = 256;
  static constexpr uint32_t kPad = 257;

  std::string kind() const override { return "byte"; }
  uint32_t vocab_size() const override { return 258; }
  uint32_t document_id() const override { return kDocument; }
  uint32_t pad_id() const override { return kPad; }
  void encode(std::string_view text, std::vector<uint32_t>& out) const override;
  using Tokenizer::decode;
  std::string decode(const uint32_t* ids, size_t n) const override;
  std::string spec() const override;
  std::string hash() const override;
};

}  // namespace localist
