// SPDX-License-Identifier: Apache-2.0
// sampler.h: the global sample order. Sample `index` of training step `step` is a pure
// function of (seed, step, index): which source (by weight, among sources whose
// start_step has come) and which window of seq_len+1 tokens in it. It does not depend
// on the world size, so any number of data-parallel ranks, or a resume on another
// number, sees the same global batches; each DP rank takes a contiguous slice (uneven
// when the batch does not divide: sizes differ by at most one).
// Limits: windows are drawn with replacement (uniform start positions), not as
// epochs; windows may cross document boundaries (the boundary token marks them).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace localist {

struct SamplerSource {
  std::string name;
  uint64_t token_count = 0;
  double weight = 1.0;
  int64_t start_step = 0;
};

struct SampleRef {
  int32_t source = -1;
  uint64_t start = 0;  // first token of the window (window = seq_len + 1 tokens)
  bool operator==(const SampleRef& o) const { return source == o.source && start == o.start; }
};

// What one LLM of a pool trains on (DESIGN.md §1 M11): from `from_step` on, rows
// [0, replay_rows) of each batch are drawn among the `replay` sources, the others among
// the `own` sources (indices into the training sources; weights and start steps kept).
struct StreamPhase {
  int64_t from_step = 0;
  std::vector<int32_t> own, replay;
  int64_t replay_rows = 0;
};

// Rows [begin, end) of a global batch that data-parallel rank dp_rank of dp_size takes:
// contiguous slices differing by at most one row (the first batch mod dp_size ranks take
// one more). Throws ConfigError when a rank would get no row.
std::pair<int64_t, int64_t> batch_slice(int64_t global_batch, int dp_rank, int dp_size);

class GlobalSampler {
 public:
  // Throws ConfigError if a source is shorter than one window or none starts at step 0.
  // `phases` (ascending from_step; empty: every source at every step) restrict what the
  // batches draw from; `seed` keys the draws (an LLM's own stream in a pool).
  GlobalSampler(std::vector<SamplerSource> sources, int64_t seq_len, uint64_t seed, int64_t global_batch,
                std::vector<StreamPhase> phases = {});

  // Row `index` of step `step` (indices past the batch, e.g. probes, draw among the own sources).
  SampleRef sample(int64_t step, int64_t index) const;
  // The same draw among `allowed` sources only (by index; their weights kept), e.g. the
  // windows of one domain; empty = every source.
  SampleRef sample_among(int64_t step, int64_t index, const std::vector<int32_t>& allowed) const;
  // batch_slice of this sampler's global batch.
  std::pair<int64_t, int64_t> rank_range(int dp_rank, int dp_size) const;
  std::vector<SampleRef> rank_samples(int64_t step, int dp_rank, int dp_size) const;

  int64_t seq_len() const { return seq_len_; }
  int64_t global_batch() const { return global_batch_; }
  const std::vector<SamplerSource>& sources() const { return sources_; }

 private:
  std::vector<SamplerSource> sources_;
  int64_t seq_len_;
  uint64_t seed_;
  int64_t global_batch_;
  std::vector<StreamPhase> phases_;
};

}  // namespace localist
