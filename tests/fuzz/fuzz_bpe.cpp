// SPDX-License-Identifier: Apache-2.0
// fuzz_bpe.cpp: GPT-2's BPE files (data/bpe_tokenizer.h). The input, split at 0xFF bytes,
// is [tokenizer.json] or [vocab.json, merges.txt] (two fields when the second is not
// empty), then a text. A tokenizer that loads must encode the text losslessly, and its
// stored copy must load to the same mapping; anything else is a localist::Error.
#include <cstdlib>

#include "core/error.h"
#include "data/bpe_tokenizer.h"
#include "tests/fuzz/fuzz_target.h"

LOCALIST_FUZZ_TARGET(bpe) {
  const std::vector<std::string> f = localist::fuzz::split_fields(data, size, 3);
  std::unique_ptr<localist::BpeTokenizer> t;
  try {
    t = f[1].empty() ? localist::BpeTokenizer::from_tokenizer_json(f[0], "fuzz")
                     : localist::BpeTokenizer::from_vocab_merges(f[0], f[1], "fuzz");
  } catch (const localist::Error&) {
    return 0;
  }
  std::vector<uint32_t> ids;
  t->encode(f[2], ids);
  for (uint32_t id : ids)
    if (id >= t->vocab_size()) std::abort();  // an id the model could not embed
  if (t->decode(ids) != f[2]) std::abort();
  const auto again = localist::BpeTokenizer::from_tokenizer_json(t->stored_contents(), "fuzz copy");
  if (again->hash() != t->hash()) std::abort();
  std::vector<uint32_t> ids2;
  again->encode(f[2], ids2);
  if (ids2 != ids) std::abort();
  return 0;
}
