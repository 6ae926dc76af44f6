// SPDX-License-Identifier: Apache-2.0
// cpu_capability.h: which build of the fused CPU kernels this machine runs: AVX2 + FMA
// when they were compiled (LOCALIST_FUSED_AVX2, model/CMakeLists.txt) and the CPU has
// them, the portable build otherwise. Checked once per process.
#pragma once
#include <cstdlib>
#include <cstring>

namespace localist {

// LOCALIST_UNFUSED=attention, ffn or all: the reference path for that part, for a user
// who suspects a fused kernel (the results differ from the fused ones by rounding).
inline bool fused_disabled_by_env(const char* part) {
  const char* v = std::getenv("LOCALIST_UNFUSED");
  return v && (std::strcmp(v, "all") == 0 || std::strcmp(v, part) == 0);
}

inline bool fused_kernels_use_avx2() {
#ifdef LOCALIST_FUSED_AVX2
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
#else
  return false;
#endif
}

}  // namespace localist
