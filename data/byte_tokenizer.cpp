// SPDX-License-Identifier: Apache-2.0
// byte_tokenizer.cpp: see byte_tokenizer.h.
#include "data/byte_tokenizer.h"

#include "core/sha256.h"

namespace localist {

void ByteTokenizer::encode(std::string_view text, std::vector<uint32_t>& out) const {
  out.reserve(out.size() + text.size());
  for (unsigned char c : text) out.push_back(c);
}

std::string ByteTokenizer::decode(const uint32_t* ids, size_t n) const {
  std::string s;
  s.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 256) s.push_back(static_cast<char>(ids[i]));
  }
  return s;
}

std::string ByteTokenizer::spec() const { return R"({"kind":"byte","vocab_size":258,"document_id":256,"pad_id":257})"; }

std::string ByteTokenizer::hash() const { return sha256_hex(spec()); }

}  // namespace localist
