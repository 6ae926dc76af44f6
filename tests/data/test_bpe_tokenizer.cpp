// SPDX-License-Identifier: Apache-2.0
// test_bpe_tokenizer.cpp: GPT-2's byte-level BPE. The pre-tokenizer on hand-worked cases
// of GPT-2's regex; the heap merging against GPT-2's own loop (encoder.py's bpe(): merge
// every occurrence of the lowest-ranked pair, repeat), written plainly here, on merges
// learnt from a corpus and on random text; lossless round trips of any bytes; the two
// file layouts; and bad files as located one-line errors. Ids against Hugging Face
// tokenizers itself: tests/e2e/test_export.cpp (Export.BpeIds...).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "data/bpe_tokenizer.h"
#include "data/byte_level.h"
#include "data/data_config.h"
#include "tests/test_util.h"

using namespace localist;

namespace {

std::vector<std::string> pieces(const std::string& text) {
  std::vector<std::string_view> v;
  byte_level_pretokenize(text, v);
  return {v.begin(), v.end()};
}

std::string mapped(std::string_view bytes) {
  std::string s;
  for (unsigned char c : bytes) s += byte_level_alphabet()[c];
  return s;
}

// Splits byte-level text into its characters (each stands for one byte).
std::vector<std::string> chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = static_cast<unsigned char>(s[i]) < 0x80 ? 1 : 2;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

// Learns `count` merges from `text` the textbook way (most frequent pair of the pieces).
std::vector<std::pair<std::string, std::string>> learn_merges(const std::string& text, int count) {
  std::map<std::vector<std::string>, int> words;
  for (const auto& p : pieces(text)) words[chars(mapped(p))]++;
  std::vector<std::pair<std::string, std::string>> merges;
  for (int m = 0; m < count; ++m) {
    std::map<std::pair<std::string, std::string>, int> freq;
    for (const auto& [w, n] : words)
      for (size_t i = 0; i + 1 < w.size(); ++i) freq[{w[i], w[i + 1]}] += n;
    if (freq.empty()) break;
    auto best = freq.begin();
    for (auto it = freq.begin(); it != freq.end(); ++it)
      if (it->second > best->second) best = it;
    merges.push_back(best->first);
    std::map<std::vector<std::string>, int> next;
    for (const auto& [w, n] : words) {
      std::vector<std::string> v;
      for (size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == best->first.first && w[i + 1] == best->first.second) {
          v.push_back(w[i] + w[i + 1]);
          ++i;
        } else {
          v.push_back(w[i]);
        }
      }
      next[v] += n;
    }
    words = std::move(next);
  }
  return merges;
}

struct Files {
  std::string vocab_json, merges_txt;
  std::map<std::string, int> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
};

Files gpt2_files(const std::string& text, int count) {
  Files f;
  for (int b = 0; b < 256; ++b) f.vocab[byte_level_alphabet()[b]] = b;
  f.merges = learn_merges(text, count);
  for (const auto& [a, b] : f.merges) f.vocab.emplace(a + b, static_cast<int>(f.vocab.size()));
  f.vocab[BpeTokenizer::kDocumentToken] = static_cast<int>(f.vocab.size());
  nlohmann::json v(f.vocab);
  f.vocab_json = v.dump();
  f.merges_txt = "#version: 0.2\n";
  for (const auto& [a, b] : f.merges) f.merges_txt += a + " " + b + "\n";
  return f;
}

// GPT-2's encoder.py bpe(), on one piece.
std::vector<uint32_t> reference_ids(const Files& f, std::string_view piece) {
  std::vector<std::string> word = chars(mapped(piece));
  std::map<std::pair<std::string, std::string>, size_t> rank;
  for (size_t r = 0; r < f.merges.size(); ++r) rank.emplace(f.merges[r], r);
  while (word.size() > 1) {
    size_t best = SIZE_MAX;
    std::pair<std::string, std::string> pair;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      const auto it = rank.find({word[i], word[i + 1]});
      if (it != rank.end() && it->second < best) best = it->second, pair = it->first;
    }
    if (best == SIZE_MAX) break;
    std::vector<std::string> v;
    for (size_t i = 0; i < word.size(); ++i) {
      if (i + 1 < word.size() && word[i] == pair.first && word[i + 1] == pair.second) {
        v.push_back(word[i] + word[i + 1]);
        ++i;
      } else {
        v.push_back(word[i]);
      }
    }
    word = std::move(v);
  }
  std::vector<uint32_t> ids;
  for (const auto& w : word) ids.push_back(static_cast<uint32_t>(f.vocab.at(w)));
  return ids;
}

std::string random_text(std::mt19937& rng, size_t n) {
  static const std::vector<std::string> alphabet = {
      "a",   "b",    "e",   "t",    "h",  " ", " ", "  ", "\n",   "\t",   "'",        "'s",           "'ll",
      "1",   "23",   ".",   ",",    "!",  "é", "ß", "Ж",  "日本", "🙂", "\xC2\xA0", "\xE3\x80\x80", "\xC2\x85",
      "the", " the", "ing", "\r\n", "--", "٣"};
  std::string s;
  while (s.size() < n) s += alphabet[rng() % alphabet.size()];
  return s;
}

}  // namespace

TEST(BytePretokenizer, SplitsAsGpt2sRegex) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(pieces("I'm here, they'll see"), (V{"I", "'m", " here", ",", " they", "'ll", " see"}));
  EXPECT_EQ(pieces("It'S"), (V{"It", "'", "S"}));  // the contractions are lower case only
  EXPECT_EQ(pieces("a  b"), (V{"a", " ", " b"}));  // \s+(?!\S) leaves the last space to " b"
  EXPECT_EQ(pieces("x\n\ny"), (V{"x", "\n", "\n", "y"}));
  EXPECT_EQ(pieces(" \ny"), (V{" ", "\n", "y"}));
  EXPECT_EQ(pieces("end   "), (V{"end", "   "}));  // trailing whitespace stays whole
  EXPECT_EQ(pieces("pi 3.14159 ok"), (V{"pi", " 3", ".", "14159", " ok"}));
  EXPECT_EQ(pieces(" 123abc"), (V{" 123", "abc"}));
  EXPECT_EQ(pieces("(\"quoted\")!!"), (V{"(\"", "quoted", "\")!!"}));
  EXPECT_EQ(pieces("Καλημέρα κόσμε"), (V{"Καλημέρα", " κόσμε"}));
  EXPECT_EQ(pieces("日本語のテキスト"), (V{"日本語のテキスト"}));
  EXPECT_EQ(pieces("a\xC2\x85"
                   "b"),
            (V{"a", "\xC2\x85", "b"}));  // NEL is whitespace to Oniguruma
  EXPECT_EQ(pieces("a\xE3\x80\x80\xE3\x80\x80"
                   "b"),
            (V{"a", "\xE3\x80\x80", "\xE3\x80\x80", "b"}));
  EXPECT_EQ(pieces("a\xFF\xFE"
                   "b c"),
            (V{"a", "\xFF", "\xFE", "b", " c"}));  // invalid bytes: one piece each
  EXPECT_TRUE(pieces("").empty());
}

TEST(BpeTokenizer, MergesAsGpt2sOwnLoopOnCorpusAndRandomText) {
  const std::string corpus = test::read_text(test::corpus("tinyshakespeare.txt")).substr(0, 30000);
  const Files f = gpt2_files(corpus, 200);
  const auto tok = BpeTokenizer::from_vocab_merges(f.vocab_json, f.merges_txt, "test");
  EXPECT_EQ(tok->vocab_size(), f.vocab.size());
  EXPECT_EQ(tok->document_id(), static_cast<uint32_t>(f.vocab.at("<|endoftext|>")));
  EXPECT_EQ(tok->pad_id(), tok->vocab_size());
  std::mt19937 rng(7);
  std::vector<std::string> texts = {corpus.substr(0, 20000),
                                    test::read_text(test::corpus("wikitext2-valid.txt")).substr(0, 20000)};
  for (int i = 0; i < 300; ++i) texts.push_back(random_text(rng, 1 + rng() % 200));
  texts.push_back(std::string(5000, '!'));  // one long piece: the heap's case
  for (const auto& text : texts) {
    std::vector<uint32_t> want;
    for (const auto& p : pieces(text)) {
      const auto ids = reference_ids(f, p);
      want.insert(want.end(), ids.begin(), ids.end());
    }
    std::vector<uint32_t> got;
    tok->encode(text, got);
    ASSERT_EQ(got, want) << text.substr(0, 80);
    ASSERT_EQ(tok->decode(got), text);
    got.clear();
    tok->encode(text, got);  // again, from the piece cache
    ASSERT_EQ(got, want);
  }
  std::vector<uint32_t> ids;
  tok->encode(corpus, ids);
  EXPECT_LT(static_cast<double>(ids.size()), 0.6 * static_cast<double>(corpus.size()));  // the merges do merge
}

// decode(encode(x)) = x on every bundled corpus, whole (ids against tokenizers: the e2e test).
TEST(BpeTokenizer, EveryBundledCorpusRoundTrips) {
  const Files f = gpt2_files(test::read_text(test::corpus("tinyshakespeare.txt")).substr(0, 30000), 200);
  const auto tok = BpeTokenizer::from_vocab_merges(f.vocab_json, f.merges_txt, "test");
  for (const char* name : {"tinyshakespeare.txt", "wikitext2-valid.txt", "wikitext2-test.txt"}) {
    const std::string text = test::read_text(test::corpus(name));
    std::vector<uint32_t> ids;
    tok->encode(text, ids);
    EXPECT_LT(ids.size(), text.size()) << name;
    EXPECT_EQ(tok->decode(ids), text) << name;
  }
  const std::string scripts = test::read_text(test::source_dir() + "/tests/data/text/scripts.txt");
  std::vector<uint32_t> ids;
  tok->encode(scripts, ids);
  EXPECT_EQ(tok->decode(ids), scripts);
}

TEST(BpeTokenizer, AnyBytesRoundTrip) {
  const Files f = gpt2_files(test::read_text(test::corpus("wikitext2-valid.txt")).substr(0, 30000), 200);
  const auto tok = BpeTokenizer::from_vocab_merges(f.vocab_json, f.merges_txt, "test");
  std::mt19937 rng(11);
  for (int i = 0; i < 500; ++i) {
    std::string s(rng() % 64, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : "a \n'.\xC3\xA9"[rng() % 7]);
    std::vector<uint32_t> ids;
    tok->encode(s, ids);
    ASSERT_EQ(tok->decode(ids), s);
  }
  std::vector<uint32_t> ids = {tok->document_id(), 'h', tok->pad_id(), tok->vocab_size() + 5};
  EXPECT_EQ(tok->decode(ids), "h");  // boundary, padding and unknown ids decode to nothing
}

TEST(BpeTokenizer, BothFileLayoutsAndTheStoredCopyAreOneMapping) {
  const Files f = gpt2_files(test::read_text(test::corpus("tinyshakespeare.txt")).substr(0, 30000), 150);
  test::TempDir dir;
  test::write_text(dir / "vocab.json", f.vocab_json);
  test::write_text(dir / "merges.txt", f.merges_txt);
  const auto a = BpeTokenizer::load(dir.path());
  test::write_text(dir / "copy.json", a->stored_contents());
  const auto b = BpeTokenizer::load(dir / "copy.json");
  EXPECT_EQ(a->hash(), b->hash());
  EXPECT_EQ(a->spec(), b->spec());
  EXPECT_EQ(tokenizer_stored_file("bpe"), "tokenizer.json");
  // tokenizers 0.20+ writes merges as pairs; the same mapping either way.
  auto j = nlohmann::json::parse(a->stored_contents());
  for (auto& m : j["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    m = nlohmann::json::array({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  EXPECT_EQ(BpeTokenizer::from_tokenizer_json(j.dump(), "pairs")->hash(), a->hash());
  std::vector<uint32_t> x, y;
  a->encode("To be, or not to be: that is the question.", x);
  b->encode("To be, or not to be: that is the question.", y);
  EXPECT_EQ(x, y);
  // A literal "<|endoftext|>" in the text is text, not the boundary token.
  x.clear();
  a->encode("a<|endoftext|>b", x);
  EXPECT_EQ(std::count(x.begin(), x.end(), a->document_id()), 0);
  EXPECT_EQ(a->decode(x), "a<|endoftext|>b");
  TokenizerConfig config;
  config.kind = "bpe";
  config.model = dir.path();
  EXPECT_EQ(tokenizer_create(config, {}, "")->hash(), a->hash());
}

TEST(BpeTokenizer, BadFilesAreLocatedConfigErrors) {
  const Files f = gpt2_files("the theme then", 3);
  auto fails = [](const std::function<void()>& load, const std::string& want) {
    try {
      load();
      ADD_FAILURE() << "no error; wanted: " << want;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  };
  auto vm = [](const std::string& v, const std::string& m) {
    return [=] { BpeTokenizer::from_vocab_merges(v, m, "D"); };
  };
  fails(vm("{", f.merges_txt), "D/vocab.json: not valid JSON");
  fails(vm("[1]", f.merges_txt), "D/vocab.json: the vocabulary is not a JSON object");
  fails(vm(R"({"a": "x"})", f.merges_txt), "vocabulary entry \"a\" has no integer id");
  fails(vm(R"({"a": -1})", ""), "has id -1, out of range");
  fails(vm(R"({"a": 0, "b": 0})", ""), "id 0 is given to");
  fails(vm(f.vocab_json, "#version: 0.2\nt h e\n"), "D/merges.txt:2: a merge is two tokens and one space");
  fails(vm(f.vocab_json, "t zz\n"), "merge 0 (\"t\" \"zz\") needs \"zz\"");
  auto no_doc = nlohmann::json::parse(f.vocab_json);
  no_doc.erase("<|endoftext|>");
  fails(vm(no_doc.dump(), f.merges_txt), "no <|endoftext|> token");
  auto no_byte = nlohmann::json::parse(f.vocab_json);
  no_byte.erase("A");
  fails(vm(no_byte.dump(), ""), "no token for byte 0x41");
  const auto good =
      nlohmann::json::parse(BpeTokenizer::from_vocab_merges(f.vocab_json, f.merges_txt, "D")->stored_contents());
  auto js = [](nlohmann::json j) { return [=] { BpeTokenizer::from_tokenizer_json(j.dump(), "T.json"); }; };
  auto with = [&](const std::string& ptr, const nlohmann::json& v) {
    auto j = good;
    j[nlohmann::json::json_pointer(ptr)] = v;
    return j;
  };
  fails(js(with("/model/type", "WordPiece")), "T.json: model type is not BPE");
  fails(js(with("/normalizer", {{"type", "NFC"}})), "it has a normalizer");
  fails(js(with("/pre_tokenizer/add_prefix_space", true)), "the pre_tokenizer is not ByteLevel");
  const nlohmann::json bos = {{"SpecialToken", {{"id", "<|endoftext|>"}, {"type_id", 0}}}},
                       text = {{"Sequence", {{"id", "A"}, {"type_id", 0}}}};
  fails(js(with("/post_processor", {{"type", "TemplateProcessing"}, {"single", {bos, text}}})),
        "the post_processor adds tokens");
  EXPECT_NO_THROW(js(with("/post_processor", {{"type", "TemplateProcessing"}, {"single", {text}}}))());
  fails(js(with("/model/dropout", 0.1)), "uses dropout");
  fails(js(with("/model/merges/0", 5)), "merge 0 is neither");
  fails(js(with("/model/merges/0", " t")), "merge 0 \" t\" is not two tokens and one space");
  fails(js(with("/model/merges/0", nlohmann::json::array({"", "t"}))),
        "merge 0 (\"\" \"t\") needs \"\", which is not in the vocabulary");
  fails(js(with("/model/vocab", 3)), "the vocabulary is not a JSON object");
  fails(js(with("/added_tokens/0/special", false)), "is not special");
  fails(js(with("/added_tokens/0/id", "x")), "added token \"<|endoftext|>\" has no integer id");
  fails(js(with("/added_tokens/0/id", 1e300)), "added token \"<|endoftext|>\" has no integer id");
  fails(js(with("/added_tokens/0/content", 7)), "T.json: unexpected tokenizer.json layout");
  fails([] { BpeTokenizer::load("/nonexistent/tok"); }, "/nonexistent/tok: no such tokenizer file or directory");
  test::TempDir dir;
  fails([&] { BpeTokenizer::load(dir.path()); }, "has neither tokenizer.json nor vocab.json and merges.txt");
}
