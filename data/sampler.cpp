// SPDX-License-Identifier: Apache-2.0
// sampler.cpp: see sampler.h.
#include "data/sampler.h"

#include <algorithm>

#include "core/check.h"
#include "core/error.h"
#include "core/mix64.h"

namespace localist {

GlobalSampler::GlobalSampler(std::vector<SamplerSource> sources, int64_t seq_len, uint64_t seed, int64_t global_batch,
                             std::vector<StreamPhase> phases)
    : sources_(std::move(sources)),
      seq_len_(seq_len),
      seed_(seed),
      global_batch_(global_batch),
      phases_(std::move(phases)) {
  if (sources_.empty()) throw ConfigError("data.sources: no training source to sample from");
  if (seq_len_ < 1) throw ConfigError("model.context: must be at least 1");
  if (global_batch_ < 1) throw ConfigError("train.global_batch: must be at least 1");
  bool any_at_zero = false;
  for (const auto& s : sources_) {
    if (s.token_count < static_cast<uint64_t>(seq_len_) + 1) {
      throw ConfigError("data.sources: source '" + s.name + "' has " + std::to_string(s.token_count) +
                        " tokens, fewer than one window of model.context + 1 = " + std::to_string(seq_len_ + 1));
    }
    if (!(s.weight > 0)) throw ConfigError("data.sources: source '" + s.name + "' needs a weight > 0");
    any_at_zero |= s.start_step == 0;
  }
  if (!any_at_zero) throw ConfigError("data.sources: at least one training source must have start_step 0");
}

SampleRef GlobalSampler::sample(int64_t step, int64_t index) const {
  const StreamPhase* phase = nullptr;
  for (const auto& p : phases_) {
    if (p.from_step <= step) phase = &p;
  }
  if (!phase) return sample_among(step, index, {});
  return sample_among(step, index, index < phase->replay_rows ? phase->replay : phase->own);
}

SampleRef GlobalSampler::sample_among(int64_t step, int64_t index, const std::vector<int32_t>& allowed) const {
  const uint64_t key = mix64(mix64(mix64(seed_) ^ static_cast<uint64_t>(step)) ^ static_cast<uint64_t>(index));
  auto eligible = [&](size_t i) {
    return sources_[i].start_step <= step &&
           (allowed.empty() || std::find(allowed.begin(), allowed.end(), static_cast<int32_t>(i)) != allowed.end());
  };
  double total = 0;
  for (size_t i = 0; i < sources_.size(); ++i) {
    if (eligible(i)) total += sources_[i].weight;
  }
  LOCALIST_CHECK(total > 0, "sampler: none of the requested sources is sampled yet at step ", step);
  const double u = mix64_unit(key) * total;
  int32_t chosen = -1;
  double acc = 0;
  for (size_t i = 0; i < sources_.size(); ++i) {
    if (!eligible(i)) continue;
    chosen = static_cast<int32_t>(i);
    acc += sources_[i].weight;
    if (u < acc) break;
  }
  const uint64_t positions = sources_[chosen].token_count - static_cast<uint64_t>(seq_len_);
  const uint64_t r = mix64(key ^ 0xD1B54A32D192ED03ull);
  const uint64_t start = static_cast<uint64_t>((static_cast<unsigned __int128>(r) * positions) >> 64);
  return SampleRef{chosen, start};
}

std::pair<int64_t, int64_t> batch_slice(int64_t global_batch_, int dp_rank, int dp_size) {
  if (dp_size < 1 || dp_rank < 0 || dp_rank >= dp_size) {
    throw Error("sampler: data-parallel rank " + std::to_string(dp_rank) + " of " + std::to_string(dp_size) +
                " is invalid");
  }
  if (global_batch_ < dp_size) {
    throw ConfigError("train.global_batch: " + std::to_string(global_batch_) + " sequences leave some of the " +
                      std::to_string(dp_size) + " data-parallel ranks without a row (use at most " +
                      std::to_string(global_batch_) + " ranks, or a larger batch)");
  }
  // Uneven slices: the first (batch mod dp) ranks take one row more.
  const int64_t per = global_batch_ / dp_size, extra = global_batch_ % dp_size;
  const int64_t begin = per * dp_rank + std::min<int64_t>(dp_rank, extra);
  return {begin, begin + per + (dp_rank < extra ? 1 : 0)};
}

std::pair<int64_t, int64_t> GlobalSampler::rank_range(int dp_rank, int dp_size) const {
  return batch_slice(global_batch_, dp_rank, dp_size);
}

std::vector<SampleRef> GlobalSampler::rank_samples(int64_t step, int dp_rank, int dp_size) const {
  auto [b, e] = rank_range(dp_rank, dp_size);
  std::vector<SampleRef> out;
  out.reserve(e - b);
  for (int64_t i = b; i < e; ++i) out.push_back(sample(step, i));
  return out;
}

}  // namespace localist
