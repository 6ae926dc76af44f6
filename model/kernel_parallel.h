// SPDX-License-Identifier: Apache-2.0
// kernel_parallel.h: runs a fused kernel's independent work items on every core the rank
// was given, max(LibTorch's threads, OpenBLAS's threads). With the LibTorch wheel's MKL
// (the supported build) that is LibTorch's threads, through at::parallel_for, and MKL
// runs each item's small products sequentially inside the parallel region. Built against
// an OpenBLAS LibTorch, OpenBLAS's threads count too and it is single-threaded meanwhile.
#pragma once
#include <cstdint>
#include <functional>

namespace localist {

// fn(begin, end) over contiguous chunks of [0, n), one chunk per thread (as
// at::parallel_for with grain 1); the chunking depends only on n and the thread count,
// and the kernels' results do not depend on either.
void kernel_parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

// The threads kernel_parallel_for uses.
int kernel_threads();

// OpenBLAS's thread count (1 when the BLAS is another), and setting it (false, and
// nothing done, when the BLAS is another).
int blas_threads();
bool set_blas_threads(int threads);

// OpenBLAS's idle workers spin (sched_yield) for 2^THREAD_TIMEOUT cycles after each
// product, 2^28 (~0.1 s) by default, so between products they keep the cores that a
// fused kernel's threads then run on. This restarts them with 2^kBlasSpinExponent cycles
// (~0.1 ms) unless OPENBLAS_THREAD_TIMEOUT is set. Call it at start-up, before other
// threads exist (it sets the environment variable). Returns the exponent now in force,
// or 0 when the BLAS is not OpenBLAS (nothing done).
constexpr int kBlasSpinExponent = 18;
int settle_blas_workers();

// The exponent OpenBLAS's workers spin with now (28 when OPENBLAS_THREAD_TIMEOUT was
// never set), or 0 when the BLAS is not OpenBLAS.
int blas_worker_spin();

}  // namespace localist
