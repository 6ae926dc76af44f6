// cpu_capability.h: which build of the fused CPU kernels this machine runs: AVX2 + FMA
// when they were compiled (LOCALIST_FUSED_AVX2, model/CMakeLists.txt) and the CPU has
// them, the portable build otherwise. Checked once per process.
#pragma once

namespace localist {

inline bool fused_kernels_use_avx2() {
#ifdef LOCALIST_FUSED_AVX2
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
#else
  return false;
#endif
}

}  // namespace localist
