// SPDX-License-Identifier: Apache-2.0
// mix64.h: the splitmix64 finaliser, used wherever a value must be a pure function of
// (seed, step, index): sample order, per-step dial draws. Not cryptographic.
#pragma once
#include <cstdint>

namespace localist {

inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform double in [0, 1) from the top 53 bits of a mixed key.
inline double mix64_unit(uint64_t key) { return static_cast<double>(key >> 11) * (1.0 / 9007199254740992.0); }

}  // namespace localist
