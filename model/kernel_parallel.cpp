// SPDX-License-Identifier: Apache-2.0
// kernel_parallel.cpp: see kernel_parallel.h. OpenBLAS's thread controls are looked up at
// run time (dlsym): the BLAS is whatever Debian's libblas.so.3 alternative selects.
#include "model/kernel_parallel.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <vector>

namespace localist {
namespace {

template <typename F>
F* symbol(const char* name) {
  return reinterpret_cast<F*>(dlsym(RTLD_DEFAULT, name));
}

struct OpenBlasThreads {
  int (*get)() = nullptr;
  void (*set)(int) = nullptr;
  // The worker pool's controls (exported by OpenBLAS 0.3.x; absent elsewhere).
  void (*read_env)() = nullptr;
  int (*timeout)() = nullptr;
  int (*shutdown)() = nullptr;
  int (*init)() = nullptr;
  OpenBlasThreads() {
    get = symbol<int()>("openblas_get_num_threads");
    set = symbol<void(int)>("openblas_set_num_threads");
    if (!get || !set) get = nullptr, set = nullptr;
    read_env = symbol<void()>("openblas_read_env");
    timeout = symbol<int()>("openblas_thread_timeout");
    shutdown = symbol<int()>("blas_thread_shutdown_");
    init = symbol<int()>("blas_thread_init");
  }
  bool pool_controls() const { return get && read_env && timeout && shutdown && init; }
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

int settle_blas_workers() {
  const auto& o = openblas();
  if (!o.pool_controls()) return 0;
  if (std::getenv("OPENBLAS_THREAD_TIMEOUT") == nullptr) {
    setenv("OPENBLAS_THREAD_TIMEOUT", std::to_string(kBlasSpinExponent).c_str(), 0);
    o.read_env();
    // The workers read the timeout when they are created: restart them (same count).
    o.shutdown();
    o.init();
  }
  return blas_worker_spin();
}

int blas_worker_spin() {
  const auto& o = openblas();
  if (!o.pool_controls()) return 0;
  const int t = o.timeout();  // 0: the variable was not set when OpenBLAS last read it
  return t > 0 ? std::clamp(t, 4, 30) : 28;
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
