#include "kernels/cpu/gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include "base/error.h"

namespace pf::cpu {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B,
                                ldb, beta, C, ldc);
  PF_CHECK(st == dnnl_success, "oneDNN sgemm failed (status ", static_cast<int>(st), ") for M=", M,
           " N=", N, " K=", K);
}

void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                  int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                  int64_t stride_c) {
  for (int64_t b = 0; b < batch; ++b)
    gemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
         C + b * stride_c, ldc);
}

void linear_fwd(int64_t M, int64_t N, int64_t K, const float* x, const float* W, float beta,
                float* y) {
  if (M == 1) {
    // One row: each output is a dot product with a weight row; split rows across threads.
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* w = W + n * K;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int64_t k = 0; k < K; ++k) acc += x[k] * w[k];
      y[n] = beta == 0.0f ? acc : beta * y[n] + acc;
    }
    return;
  }
  gemm(false, true, M, N, K, 1.0f, x, K, W, K, beta, y, N);
}

}  // namespace pf::cpu
