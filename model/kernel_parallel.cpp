// SPDX-License-Identifier: Apache-2.0
// kernel_parallel.cpp: see kernel_parallel.h. OpenBLAS's thread controls are looked up at
// run time (dlsym): the BLAS is whatever Debian's libblas.so.3 alternative selects.
#include "model/kernel_parallel.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

namespace localist {
namespace {

struct OpenBlasThreads {
  int (*get)() = nullptr;
  void (*set)(int) = nullptr;
  OpenBlasThreads() {
    get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (!get || !set) get = nullptr, set = nullptr;
  }
};

const OpenBlasThreads& openblas() {
  static const OpenBlasThreads o;
  return o;
}

}  // namespace

int blas_threads() { return openblas().get ? openblas().get() : 1; }

bool set_blas_threads(int threads) {
  if (!openblas().set) return false;
  openblas().set(std::max(1, threads));
  return true;
}

int kernel_threads() { return std::max(at::get_num_threads(), blas_threads()); }

void kernel_parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  const int torch_threads = at::get_num_threads();
  const int threads = static_cast<int>(std::min<int64_t>(kernel_threads(), n));
  // Inside another parallel region, or nothing to gain: LibTorch's own pool.
  if (threads <= torch_threads || at::in_parallel_region()) {
    at::parallel_for(0, n, 1, fn);
    return;
  }
  const auto& o = openblas();
  const int blas_before = o.get();
  o.set(1);
  const int64_t chunk = (n + threads - 1) / threads;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
  auto run = [&](int t) {
    const int64_t begin = t * chunk, end = std::min(n, begin + chunk);
    if (begin >= end) return;
    try {
      fn(begin, end);
    } catch (...) {
      errors[static_cast<size_t>(t)] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads - 1));
  for (int t = 1; t < threads; ++t) pool.emplace_back(run, t);
  run(0);
  for (auto& th : pool) th.join();
  o.set(blas_before);
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace localist
