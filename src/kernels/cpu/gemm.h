// Matrix products through oneDNN's JIT sgemm (row-major).
#pragma once
#include <cstdint>

namespace pf::cpu {

// C(M,N) = alpha * op(A) * op(B) + beta * C, where op(A) is (M,K) and op(B) is (K,N).
// lda/ldb/ldc are row strides of the matrices as stored.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Batched: `batch` independent products with element strides between batch entries.
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                  int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                  int64_t stride_c);

// y(M,N) = x(M,K) * W(N,K)^T (+ beta*y): the Linear layer with PyTorch's (out, in) weights.
// M == 1 takes a threaded GEMV path that streams W once (decode is bandwidth bound).
void linear_fwd(int64_t M, int64_t N, int64_t K, const float* x, const float* W, float beta,
                float* y);

}  // namespace pf::cpu
