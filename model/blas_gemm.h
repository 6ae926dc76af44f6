// SPDX-License-Identifier: Apache-2.0
// blas_gemm.h: row-major matrix products on raw pointers through the BLAS that
// LibTorch itself calls (the wheel's libtorch_cpu exports MKL's sgemm_/dgemm_; nothing
// else providing them is linked), for kernels that multiply tiles in place without
// making tensors. Limits: float and double
// only; dimensions and leading dimensions must fit in a 32-bit int (LP64 BLAS).
#pragma once
#include <cstdint>

extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc);
}

namespace localist {

namespace detail {
template <typename S>
using BlasGemm = void (*)(const char*, const char*, const int*, const int*, const int*, const S*, const S*, const int*,
                          const S*, const int*, const S*, S*, const int*);

// A row-major matrix is its transpose in column-major order, so the row-major product
// is the column-major C^T = op(B)^T op(A)^T: the operands swap.
template <typename S>
void gemm_swapped(BlasGemm<S> gemm, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, S alpha, const S* a,
                  int64_t lda, const S* b, int64_t ldb, S beta, S* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
  const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
  const int LDA = static_cast<int>(lda), LDB = static_cast<int>(ldb), LDC = static_cast<int>(ldc);
  gemm(&tb, &ta, &N, &M, &K, &alpha, b, &LDB, a, &LDA, &beta, c, &LDC);
}
}  // namespace detail

// C (m x n, row stride ldc) = alpha * op(A) * op(B) + beta * C, all row-major; op(A) is m x k.
inline void gemm_row_major(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  detail::gemm_swapped<float>(sgemm_, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

inline void gemm_row_major(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                           int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  detail::gemm_swapped<double>(dgemm_, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace localist
