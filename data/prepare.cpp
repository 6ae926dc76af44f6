// SPDX-License-Identifier: Apache-2.0
// prepare.cpp: see prepare.h.
#include "data/prepare.h"

#include <chrono>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/metrics_writer.h"
#include "core/progress_line.h"
#include "core/sha256.h"
#include "data/text_source.h"
#include "data/tokenizer.h"

namespace localist {
namespace fs = std::filesystem;

std::string shard_path(const DataConfig& data, const SourceConfig& source) {
  return (fs::path(data.shard_dir) / (source.name + ".h5")).string();
}

std::string trained_tokenizer_path(const DataConfig& data) {
  if (data.tokenizer.kind != "sentencepiece" || !data.tokenizer.model.empty()) return "";
  // The name fingerprints everything the trained model depends on, so changing the
  // vocabulary size or a training source trains a new model instead of reusing a stale one.
  Sha256 h;
  h.update(data.tokenizer.model_type + "/" + std::to_string(data.tokenizer.vocab_size));
  for (const auto& s : data.sources) {
    if (s.train) h.update("/" + sha256_file(s.path));
  }
  return (fs::path(data.shard_dir) / ("tokenizer-" + h.hex_digest().substr(0, 16) + ".model")).string();
}

std::vector<ShardSummary> prepare_shards(const DataConfig& data, bool force, ProgressLine* progress) {
  if (data.sources.empty()) throw ConfigError("data.sources: no sources configured; nothing to prepare");
  // Validate every source before writing anything.
  for (const auto& s : data.sources) text_source_read(s.path, s.split);

  std::error_code ec;
  fs::create_directories(data.shard_dir, ec);
  if (ec) throw Error(data.shard_dir + ": cannot create shard directory: " + ec.message());

  std::vector<std::string> training_files;
  for (const auto& s : data.sources) {
    if (s.train) training_files.push_back(s.path);
  }
  const std::string sp_path = trained_tokenizer_path(data);
  if (!sp_path.empty()) spdlog::info("tokenizer: SentencePiece model {}", sp_path);
  std::unique_ptr<Tokenizer> tok = tokenizer_create(data.tokenizer, training_files, sp_path);

  MetricsWriter events((fs::path(data.shard_dir) / "prepare.jsonl").string());
  std::vector<ShardSummary> out;
  for (size_t i = 0; i < data.sources.size(); ++i) {
    const SourceConfig& s = data.sources[i];
    const auto t0 = std::chrono::steady_clock::now();
    ShardSummary sum;
    sum.path = shard_path(data, s);
    const std::string source_sha = sha256_file(s.path);
    if (!force && fs::exists(sum.path)) {
      try {
        ShardMeta old = shard_read_meta(sum.path);
        if (old.source_sha256 == source_sha && old.tokenizer_hash == tok->hash() && old.domain == s.domain) {
          sum.meta = old;
          out.push_back(sum);
          spdlog::info("{}: up to date ({} tokens)", sum.path, old.token_count);
          continue;
        }
      } catch (const Error& e) {
        spdlog::warn("{}; rebuilding it", e.what());
      }
    }
    if (progress) progress->update(fmt::format("prepare [{}/{}] {}: tokenizing", i + 1, data.sources.size(), s.name));
    TextSource src = text_source_read(s.path, s.split);
    std::vector<uint32_t> tokens;
    tokens.reserve(src.text.size() + src.document_starts.size());
    std::vector<uint64_t> offsets;
    for (size_t d = 0; d < src.document_starts.size(); ++d) {
      const size_t b = src.document_starts[d];
      const size_t e = d + 1 < src.document_starts.size() ? src.document_starts[d + 1] : src.text.size();
      offsets.push_back(tokens.size());
      tokens.push_back(tok->document_id());
      tok->encode(std::string_view(src.text).substr(b, e - b), tokens);
      if (progress && d % 256 == 0) {
        progress->update(fmt::format("prepare [{}/{}] {}: {:.0f}%", i + 1, data.sources.size(), s.name,
                                     100.0 * e / src.text.size()));
      }
    }
    offsets.push_back(tokens.size());

    ShardMeta& m = sum.meta;
    m.source_name = s.name;
    m.source_path = s.path;
    m.source_sha256 = source_sha;
    m.source_bytes = static_cast<int64_t>(src.text.size());
    m.domain = s.domain;
    m.tokenizer_kind = tok->kind();
    m.tokenizer_spec = tok->spec();
    m.tokenizer_hash = tok->hash();
    m.vocab_size = tok->vocab_size();
    m.token_count = static_cast<int64_t>(tokens.size());
    m.document_count = static_cast<int64_t>(offsets.size()) - 1;
    shard_write(sum.path, tokens, offsets, m);
    sum.written = true;
    sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    events.write({{"event", "shard_written"},
                  {"source", s.name},
                  {"domain", s.domain},
                  {"path", sum.path},
                  {"tokens", m.token_count},
                  {"documents", m.document_count},
                  {"source_bytes", m.source_bytes},
                  {"source_sha256", m.source_sha256},
                  {"tokenizer_hash", m.tokenizer_hash},
                  {"seconds", sum.seconds}});
    out.push_back(sum);
  }
  if (progress) progress->finish();
  return out;
}

std::string corpus_summary(const std::vector<ShardSummary>& shards) {
  std::string s = fmt::format("{:<14} {:<14} {:>9} {:>11} {:>12} {:>8}  {:<12}  {}\n", "source", "domain", "documents",
                              "tokens", "bytes", "B/token", "sha256", "shard");
  int64_t tokens = 0, bytes = 0, docs = 0;
  for (const auto& sh : shards) {
    const ShardMeta& m = sh.meta;
    s += fmt::format("{:<14} {:<14} {:>9} {:>11} {:>12} {:>8.3f}  {:<12}  {}{}\n", m.source_name, m.domain,
                     m.document_count, m.token_count, m.source_bytes, double(m.source_bytes) / double(m.token_count),
                     m.source_sha256.substr(0, 12), sh.path, sh.written ? "" : " (up to date)");
    tokens += m.token_count;
    bytes += m.source_bytes;
    docs += m.document_count;
  }
  const std::string tk = shards.empty() ? "" : shards.front().meta.tokenizer_kind;
  const int64_t vocab = shards.empty() ? 0 : shards.front().meta.vocab_size;
  s += fmt::format("total: {} sources, {} documents, {} tokens, {} bytes; tokenizer {} (vocabulary {})", shards.size(),
                   docs, tokens, bytes, tk, vocab);
  return s;
}

}  // namespace localist
