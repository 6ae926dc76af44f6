// SPDX-License-Identifier: Apache-2.0
// seed_stream.h: the one way a random stream is seeded from (run seed, purpose, step,
// index), so that what a stream draws is a pure function of those four and never of
// the world size or of which rank draws it. Each purpose has its own multiplier, kept
// from the formulas the streams had before this helper (losses stay bit-identical).
// Not cryptographic (splitmix64, core/mix64.h).
#pragma once
#include <cstdint>

#include "core/mix64.h"

namespace localist {

enum class SeedPurpose : uint64_t {
  kDropout = 1000003,         // training dropout; index = micro-batch of the global batch
  kUntaggedWindow = 1000004,  // which routed-domain windows train without their tag (see seed_stream)
  kTrialDropout = 7919,       // recruitment trial dropout; index = 131 * trial step + first window
  kBlockInit = 4099,          // a recruited block's fresh q/k/v rows; index = slot
  kCandidates = 1,            // k-means seeding of recruitment candidates; index 0
};

inline uint64_t seed_stream(uint64_t seed, SeedPurpose purpose, int64_t step, uint64_t index = 0) {
  // NOTE(untagged windows): that stream was seeded with the dropout multiplier before
  // the helper existed; it keeps that value so that decisions stay bit-identical.
  const uint64_t mult = purpose == SeedPurpose::kUntaggedWindow ? 1000003u : static_cast<uint64_t>(purpose);
  return mix64(seed ^ mix64(static_cast<uint64_t>(step) * mult + index));
}

// Uniform double in [0, 1) of a stream's first draw.
inline double seed_stream_unit(uint64_t seed, SeedPurpose purpose, int64_t step, uint64_t index = 0) {
  return mix64_unit(seed_stream(seed, purpose, step, index));
}

}  // namespace localist
