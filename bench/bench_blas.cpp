// SPDX-License-Identifier: Apache-2.0
// bench_blas.cpp: why tools/setup.sh selects OpenBLAS. Times sgemm (n x n, fp32)
// through Debian's reference BLAS and through OpenBLAS, both loaded with dlopen in the
// same process, and prints GFLOP/s and the ratio. Usage: bench_blas [n] [repeats].
// Limits: single-threaded comparison unless OPENBLAS_NUM_THREADS is set.
#include <dlfcn.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

using Sgemm = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                       const int*, const float*, const int*, const float*, float*, const int*);

double gflops(const char* lib, int n, int repeats) {
  void* h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    std::printf("%-60s not installed\n", lib);
    return 0;
  }
  auto sgemm = reinterpret_cast<Sgemm>(dlsym(h, "sgemm_"));
  if (!sgemm) {
    std::printf("%-60s has no sgemm_\n", lib);
    return 0;
  }
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n, 0.0f);
  const float one = 1.0f, zero = 0.0f;
  sgemm("N", "N", &n, &n, &n, &one, a.data(), &n, b.data(), &n, &zero, c.data(), &n);  // warm-up
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    sgemm("N", "N", &n, &n, &n, &one, a.data(), &n, b.data(), &n, &zero, c.data(), &n);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const double g = 2.0 * n * n * double(n) / best / 1e9;
  std::printf("%-60s %8.1f GFLOP/s (best of %d, n=%d, c[0]=%g)\n", lib, g, repeats, n, c[0]);
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 1024;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
  const double ref = gflops("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3", n, repeats);
  const double open = gflops("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3", n, repeats);
  if (ref > 0 && open > 0) std::printf("OpenBLAS / reference BLAS = %.1fx\n", open / ref);
  return 0;
}
