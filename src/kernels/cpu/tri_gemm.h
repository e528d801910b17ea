// Products with a lower-triangular (n, n) matrix kept in blocks of kTriBlock rows: only
// the blocks on or below the diagonal are computed, halving the within-chunk work of the
// chunked linear recurrences (SSD, retention).
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/gemm.h"

namespace pf::cpu {

constexpr int64_t kTriBlock = 64;

// Columns [0, tri_end) of row i can be nonzero in the blocked lower triangle of an (n, n).
inline int64_t tri_end(int64_t i, int64_t n) {
  return std::min(n, (i / kTriBlock + 1) * kTriBlock);
}

// out (n, n), row stride ldo: the blocked lower triangle of A (n, K) . Bt (n, K)^T.
inline void tri_abt(int64_t n, int64_t K, const float* A, int64_t lda, const float* Bt, int64_t ldb,
                    float* out, int64_t ldo) {
  for (int64_t i0 = 0; i0 < n; i0 += kTriBlock)
    gemm(false, true, std::min(kTriBlock, n - i0), tri_end(i0, n), K, 1.0f, A + i0 * lda, lda, Bt,
         ldb, 0.0f, out + i0 * ldo, ldo);
}

// out (n, F) = M (n, n) . X (n, F) + beta * out, with M zero above its diagonal.
inline void tri_mm(int64_t n, int64_t F, const float* M, int64_t ldm, const float* X, int64_t ldx,
                   float beta, float* out, int64_t ldo) {
  for (int64_t i0 = 0; i0 < n; i0 += kTriBlock)
    gemm(false, false, std::min(kTriBlock, n - i0), F, tri_end(i0, n), 1.0f, M + i0 * ldm, ldm, X,
         ldx, beta, out + i0 * ldo, ldo);
}

// out (n, F) += M^T . X with M (n, n) as above: output rows j only meet rows i >= j of M.
inline void tri_tmm(int64_t n, int64_t F, const float* M, int64_t ldm, const float* X, int64_t ldx,
                    float* out, int64_t ldo) {
  for (int64_t j0 = 0; j0 < n; j0 += kTriBlock)
    gemm(true, false, std::min(kTriBlock, n - j0), F, n - j0, 1.0f, M + j0 * ldm + j0, ldm,
         X + j0 * ldx, ldx, 1.0f, out + j0 * ldo, ldo);
}

}  // namespace pf::cpu
