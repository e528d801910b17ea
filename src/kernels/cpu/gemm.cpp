#include "kernels/cpu/gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include <vector>

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

namespace {
// Row counts for which linear_fwd streams W row by row (the decode GEMV), or computes
// (W x^T)^T instead of oneDNN's x W^T, which packs all of W at these M. Measured on decode of
// ~10M models with 1..64 sequences (bench_lm --concurrent).
constexpr int64_t kGemvMax = 8, kSkinnyMin = 8, kSkinnyMax = 64;
}  // namespace

void linear_fwd(int64_t M, int64_t N, int64_t K, const float* x, const float* W, float beta,
                float* y) {
  if (M <= kGemvMax) {
    // A few rows: each output is a dot product with a weight row; split weight rows across
    // threads, so W streams from memory once and each row is reused from L1 for every x row.
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* w = W + n * K;
      for (int64_t m = 0; m < M; ++m) {
        const float* xm = x + m * K;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t k = 0; k < K; ++k) acc += xm[k] * w[k];
        float& out = y[m * N + n];
        out = beta == 0.0f ? acc : beta * out + acc;
      }
    }
    return;
  }
  if (M > kSkinnyMin && M <= kSkinnyMax) {
    // A few rows (many sequences decoding together): oneDNN's x W^T packs all of W on every
    // call at these M (2-3x slower than M = 12 on 2 Zen 4 cores); W x^T packs only x and
    // streams W once. yt: (N, M), then transposed into y.
    thread_local std::vector<float> yt;
    yt.resize(static_cast<size_t>(N * M));
    gemm(false, true, N, M, K, 1.0f, W, K, x, K, 0.0f, yt.data(), M);
    const float* t = yt.data();
#pragma omp parallel for schedule(static) if (M * N >= 16384)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n)
        y[m * N + n] = beta == 0.0f ? t[n * M + m] : beta * y[m * N + n] + t[n * M + m];
    return;
  }
  gemm(false, true, M, N, K, 1.0f, x, K, W, K, beta, y, N);
}

}  // namespace pf::cpu
