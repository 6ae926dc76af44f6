// SPDX-License-Identifier: Apache-2.0
// bpe_tokenizer.cpp: see bpe_tokenizer.h. Merging follows Hugging Face's BPE model
// (tokenizers' Word::merge_all): the lowest-ranked adjacent pair first, the leftmost on
// ties, with a heap, so a long piece (a run of punctuation) costs n log n, not n².
#include "data/bpe_tokenizer.h"

#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <queue>

#include "core/error.h"
#include "core/file_util.h"
#include "core/sha256.h"
#include "data/byte_level.h"

namespace localist {
namespace {

constexpr int64_t kMaxId = int64_t(1) << 24;             // far above any real vocabulary
constexpr uint64_t kMaxFileBytes = uint64_t(256) << 20;  // tokenizer files are a few MB
constexpr size_t kCacheEntries = size_t(1) << 16;
constexpr size_t kCachedPieceBytes = 64;

uint64_t pair_key(uint32_t a, uint32_t b) { return (static_cast<uint64_t>(a) << 32) | b; }

bool is_file(const std::string& p) { return std::filesystem::is_regular_file(p); }

// "a b" -> (a, b): exactly one space, both parts non-empty (merges.txt lines and the
// string form of tokenizer.json's merges).
bool split_merge(const std::string& s, std::pair<std::string, std::string>& out) {
  const size_t space = s.find(' ');
  if (space == std::string::npos || space == 0 || space + 1 == s.size() || s.find(' ', space + 1) != std::string::npos)
    return false;
  out = {s.substr(0, space), s.substr(space + 1)};
  return true;
}

std::string read_tokenizer_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw ConfigError(path + ": no such tokenizer file");
  if (static_cast<uint64_t>(st.st_size) > kMaxFileBytes)
    throw ConfigError(path + ": " + std::to_string(st.st_size) + " bytes is too large for a tokenizer file");
  return read_file(path);
}

// The bytes a byte-level token stands for; a token with a character outside the
// alphabet decodes to its own UTF-8 text (as tokenizers' ByteLevel decoder does).
std::string token_bytes(const std::string& token) {
  static const std::unordered_map<std::string, unsigned char> inverse = [] {
    std::unordered_map<std::string, unsigned char> m;
    const auto& a = byte_level_alphabet();
    for (int b = 0; b < 256; ++b) m[a[b]] = static_cast<unsigned char>(b);
    return m;
  }();
  std::string out;
  for (size_t i = 0; i < token.size();) {
    const auto c = static_cast<unsigned char>(token[i]);
    const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    const auto it = inverse.find(token.substr(i, n));
    if (it == inverse.end()) return token;
    out.push_back(static_cast<char>(it->second));
    i += n;
  }
  return out;
}

nlohmann::json parse_json(const std::string& text, const std::string& where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(where + ": not valid JSON (" + e.what() + ")");
  }
}

std::vector<std::pair<std::string, int64_t>> read_vocab(const nlohmann::json& v, const std::string& where) {
  if (!v.is_object()) throw ConfigError(where + ": the vocabulary is not a JSON object of token: id");
  std::vector<std::pair<std::string, int64_t>> out;
  out.reserve(v.size());
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_number_integer())
      throw ConfigError(where + ": vocabulary entry \"" + it.key() + "\" has no integer id");
    out.emplace_back(it.key(), it.value().get<int64_t>());
  }
  return out;
}

void expect(bool ok, const std::string& where, const std::string& what) {
  if (!ok) throw ConfigError(where + ": " + what + "; localist reads GPT-2's byte-level BPE only (docs/import.md)");
}

bool null_or(const nlohmann::json& j, const char* key, const nlohmann::json& allowed) {
  return !j.contains(key) || j[key].is_null() || j[key] == allowed;
}

// GPT-2's post-processor is ByteLevel (offsets only); transformers 5 writes a template of
// the text alone. Either leaves the ids as they are.
bool adds_no_tokens(const nlohmann::json& p) {
  if (p.is_null() || p.value("type", "") == "ByteLevel") return true;
  if (p.value("type", "") != "TemplateProcessing" || !p.contains("single") || !p["single"].is_array()) return false;
  for (const auto& piece : p["single"])
    if (!piece.contains("Sequence")) return false;
  return true;
}

}  // namespace

std::unique_ptr<BpeTokenizer> BpeTokenizer::load(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw ConfigError(path + ": no such tokenizer file or directory");
  if (!S_ISDIR(st.st_mode)) return from_tokenizer_json(read_tokenizer_file(path), path);
  if (is_file(path + "/tokenizer.json"))
    return from_tokenizer_json(read_tokenizer_file(path + "/tokenizer.json"), path + "/tokenizer.json");
  if (is_file(path + "/vocab.json") && is_file(path + "/merges.txt")) {
    return from_vocab_merges(read_tokenizer_file(path + "/vocab.json"), read_tokenizer_file(path + "/merges.txt"),
                             path);
  }
  throw ConfigError(path + ": has neither tokenizer.json nor vocab.json and merges.txt (GPT-2's tokenizer files)");
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_vocab_merges(const std::string& vocab_json,
                                                              const std::string& merges_txt, const std::string& where) {
  const std::string vocab_where = where + "/vocab.json", merges_where = where + "/merges.txt";
  auto vocab = read_vocab(parse_json(vocab_json, vocab_where), vocab_where);
  std::vector<std::pair<std::string, std::string>> merges;
  size_t line_no = 0;
  for (size_t pos = 0; pos < merges_txt.size();) {
    size_t end = merges_txt.find('\n', pos);
    if (end == std::string::npos) end = merges_txt.size();
    std::string line = merges_txt.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.rfind("#version", 0) == 0) continue;
    if (!split_merge(line, merges.emplace_back()))
      throw ConfigError(merges_where + ":" + std::to_string(line_no) + ": a merge is two tokens and one space");
  }
  // GPT-2's slow tokenizer keeps <|endoftext|> in vocab.json and marks it special.
  std::vector<std::pair<std::string, int64_t>> specials;
  for (const auto& [token, id] : vocab)
    if (token == kDocumentToken) specials.emplace_back(token, id);
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  t->build(std::move(vocab), merges, specials, false, where);
  return t;
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_tokenizer_json(const std::string& json, const std::string& where) {
  const nlohmann::json j = parse_json(json, where);
  try {
    expect(j.is_object() && j.contains("model") && j["model"].is_object(), where, "no \"model\" object");
    const auto& m = j["model"];
    expect(m.value("type", "") == "BPE", where, "model type is not BPE");
    expect(null_or(j, "normalizer", nullptr), where, "it has a normalizer");
    const auto& pre = j.value("pre_tokenizer", nlohmann::json());
    expect(pre.is_object() && pre.value("type", "") == "ByteLevel" && !pre.value("add_prefix_space", false) &&
               pre.value("use_regex", true),
           where, "the pre_tokenizer is not ByteLevel (no prefix space, GPT-2's regex)");
    expect(null_or(j, "decoder", nullptr) || j["decoder"].value("type", "") == "ByteLevel", where,
           "the decoder is not ByteLevel");
    expect(adds_no_tokens(j.value("post_processor", nlohmann::json())), where,
           "the post_processor adds tokens (localist places document tokens itself)");
    expect(null_or(m, "dropout", nullptr) && null_or(m, "continuing_subword_prefix", "") &&
               null_or(m, "end_of_word_suffix", "") && !m.value("byte_fallback", false),
           where, "the BPE model uses dropout, a subword prefix or suffix, or byte fallback");
    auto vocab = read_vocab(m.value("vocab", nlohmann::json()), where);
    std::vector<std::pair<std::string, std::string>> merges;
    const auto& ms = m.value("merges", nlohmann::json::array());
    expect(ms.is_array(), where, "merges is not a list");
    for (size_t i = 0; i < ms.size(); ++i) {
      const auto& e = ms[i];
      if (e.is_string()) {  // "a b" (tokenizers before 0.20)
        if (!split_merge(e.get<std::string>(), merges.emplace_back()))
          throw ConfigError(where + ": merge " + std::to_string(i) + " " + e.dump() +
                            " is not two tokens and one space");
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      } else {
        throw ConfigError(where + ": merge " + std::to_string(i) + " is neither \"a b\" nor [\"a\", \"b\"]");
      }
    }
    std::vector<std::pair<std::string, int64_t>> specials;
    for (const auto& a : j.value("added_tokens", nlohmann::json::array())) {
      const std::string content = a.at("content").get<std::string>();
      if (!a.value("special", false))
        throw ConfigError(where + ": added token \"" + content + "\" is not special; localist does not split them out");
      if (!a.at("id").is_number_integer())
        throw ConfigError(where + ": added token \"" + content + "\" has no integer id");
      specials.emplace_back(content, a.at("id").get<int64_t>());
    }
    std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
    t->build(std::move(vocab), merges, specials, m.value("ignore_merges", false), where);
    return t;
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(where + ": unexpected tokenizer.json layout (" + e.what() + ")");
  }
}

void BpeTokenizer::build(std::vector<std::pair<std::string, int64_t>> vocab,
                         const std::vector<std::pair<std::string, std::string>>& merges,
                         const std::vector<std::pair<std::string, int64_t>>& specials, bool ignore_merges,
                         const std::string& where) {
  int64_t max_id = -1;
  for (const auto& [token, id] : vocab) {
    if (id < 0 || id >= kMaxId)
      throw ConfigError(where + ": token \"" + token + "\" has id " + std::to_string(id) + ", out of range");
    if (token.empty()) throw ConfigError(where + ": the vocabulary has an empty token");
    max_id = std::max(max_id, id);
  }
  for (const auto& [token, id] : specials) {
    if (id < 0 || id >= kMaxId)
      throw ConfigError(where + ": special token \"" + token + "\" has id " + std::to_string(id) + ", out of range");
    max_id = std::max(max_id, id);
  }
  const size_t n = static_cast<size_t>(max_id + 1);
  id_token_.assign(n, "");
  special_.assign(n, false);
  for (auto& [token, id] : vocab) {
    if (!id_token_[id].empty())
      throw ConfigError(where + ": id " + std::to_string(id) + " is given to \"" + id_token_[id] + "\" and \"" + token +
                        "\"");
    id_token_[id] = token;
    token_id_[token] = static_cast<uint32_t>(id);
  }
  for (const auto& [token, id] : specials) {
    const auto it = token_id_.find(token);
    if (it != token_id_.end() && it->second != id)
      throw ConfigError(where + ": special token \"" + token + "\" has id " + std::to_string(id) +
                        " but the vocabulary says " + std::to_string(it->second));
    if (it == token_id_.end() && !id_token_[id].empty())
      throw ConfigError(where + ": special token \"" + token + "\" takes id " + std::to_string(id) + " of \"" +
                        id_token_[id] + "\"");
    id_token_[id] = token;
    token_id_[token] = static_cast<uint32_t>(id);
    special_[id] = true;
  }
  const auto doc = token_id_.find(kDocumentToken);
  if (doc == token_id_.end())
    throw ConfigError(where + ": no " + std::string(kDocumentToken) + " token (localist's document boundary)");
  document_id_ = doc->second;
  special_[document_id_] = true;
  const auto& alphabet = byte_level_alphabet();
  for (int b = 0; b < 256; ++b) {
    const auto it = token_id_.find(alphabet[b]);
    if (it == token_id_.end() || special_[it->second]) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      throw ConfigError(where + ": the vocabulary has no token for byte " + hex + " (\"" + alphabet[b] +
                        "\"), which every byte-level BPE has");
    }
    byte_id_[b] = it->second;
  }
  id_bytes_.assign(n, "");
  for (size_t id = 0; id < n; ++id) id_bytes_[id] = special_[id] ? "" : token_bytes(id_token_[id]);
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    const auto ia = token_id_.find(a), ib = token_id_.find(b), ic = token_id_.find(a + b);
    const auto end = token_id_.end();
    if (ia == end || ib == end || ic == end) {  // (an empty part is never in the vocabulary)
      const std::string missing = ia == end ? a : ib == end ? b : a + b;
      throw ConfigError(where + ": merge " + std::to_string(r) + " (\"" + a + "\" \"" + b + "\") needs \"" + missing +
                        "\", which is not in the vocabulary");
    }
    merges_[pair_key(ia->second, ib->second)] = {static_cast<uint32_t>(r),
                                                 ic->second};  // a repeat overrides, as in tokenizers
  }
  ignore_merges_ = ignore_merges;

  write_canonical(merges);
}

// The canonical tokenizer.json: what checkpoints keep and exports carry; its hash names the mapping.
void BpeTokenizer::write_canonical(const std::vector<std::pair<std::string, std::string>>& merges) {
  nlohmann::json v = nlohmann::json::object(), added = nlohmann::json::array(), ml = nlohmann::json::array();
  for (size_t id = 0; id < id_token_.size(); ++id) {
    if (id_token_[id].empty()) continue;
    if (special_[id]) {
      added.push_back({{"id", id},
                       {"content", id_token_[id]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", true}});
    }
    v[id_token_[id]] = id;
  }
  bool plain = true;  // "a b" strings read everywhere; pairs only when a token holds a space
  for (const auto& [a, b] : merges)
    plain = plain && a.find(' ') == std::string::npos && b.find(' ') == std::string::npos;
  for (const auto& [a, b] : merges) ml.push_back(plain ? nlohmann::json(a + " " + b) : nlohmann::json::array({a, b}));
  const nlohmann::json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  const nlohmann::json j = {{"version", "1.0"},
                            {"truncation", nullptr},
                            {"padding", nullptr},
                            {"added_tokens", added},
                            {"normalizer", nullptr},
                            {"pre_tokenizer", byte_level},
                            {"post_processor", byte_level},
                            {"decoder", byte_level},
                            {"model",
                             {{"type", "BPE"},
                              {"dropout", nullptr},
                              {"unk_token", nullptr},
                              {"continuing_subword_prefix", ""},
                              {"end_of_word_suffix", ""},
                              {"fuse_unk", false},
                              {"byte_fallback", false},
                              {"ignore_merges", ignore_merges_},
                              {"vocab", v},
                              {"merges", ml}}}};
  canonical_json_ = j.dump(1);
  hash_ = sha256_hex(canonical_json_);
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<uint32_t>& out) const {
  if (piece.size() == 1) {
    out.push_back(byte_id_[static_cast<unsigned char>(piece[0])]);
    return;
  }
  if (ignore_merges_) {
    std::string text;
    for (unsigned char c : piece) text += byte_level_alphabet()[c];
    const auto it = token_id_.find(text);
    if (it != token_id_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  struct Symbol {
    uint32_t id;
    int32_t prev, next;
    bool alive;
  };
  const auto n = static_cast<int32_t>(piece.size());
  std::vector<Symbol> s(piece.size());
  for (int32_t i = 0; i < n; ++i)
    s[i] = {byte_id_[static_cast<unsigned char>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1, true};
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    uint32_t id;
  };
  auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(later)> queue(later);
  auto offer = [&](int32_t i) {
    const int32_t j = s[i].next;
    if (j < 0) return;
    const auto it = merges_.find(pair_key(s[i].id, s[j].id));
    if (it != merges_.end()) queue.push({it->second.rank, i, it->second.id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) offer(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& a = s[c.pos];
    if (!a.alive || a.next < 0) continue;
    Symbol& b = s[a.next];
    const auto it = merges_.find(pair_key(a.id, b.id));
    if (it == merges_.end() || it->second.id != c.id) continue;  // stale: a neighbour merged first
    a.id = c.id;
    b.alive = false;
    a.next = b.next;
    if (a.next >= 0) s[a.next].prev = c.pos;
    if (a.prev >= 0) offer(a.prev);
    offer(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = s[i].next) out.push_back(s[i].id);
}

void BpeTokenizer::encode(std::string_view text, std::vector<uint32_t>& out) const {
  std::vector<std::string_view> pieces;
  byte_level_pretokenize(text, pieces);
  std::vector<uint32_t> ids;
  for (const auto piece : pieces) {
    if (piece.size() > kCachedPieceBytes) {
      encode_piece(piece, out);
      continue;
    }
    const std::string key(piece);
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      const auto it = cache_.find(key);
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    ids.clear();
    encode_piece(piece, ids);
    out.insert(out.end(), ids.begin(), ids.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kCacheEntries) cache_.clear();
    cache_.emplace(key, ids);
  }
}

std::string BpeTokenizer::decode(const uint32_t* ids, size_t n) const {
  std::string s;
  for (size_t i = 0; i < n; ++i)
    if (ids[i] < id_bytes_.size()) s += id_bytes_[ids[i]];
  return s;
}

std::string BpeTokenizer::spec() const {
  return R"({"kind":"bpe","vocab_size":)" + std::to_string(vocab_size()) + R"(,"document_id":)" +
         std::to_string(document_id_) + R"(,"pad_id":)" + std::to_string(pad_id()) + R"(,"mapping_sha256":")" + hash_ +
         "\"}";
}

}  // namespace localist
