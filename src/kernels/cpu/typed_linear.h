// Matrix products and row lookups on weights of any weight dtype (F32, BF16, Q8), reading the
// compact values directly: decode streams 2 or ~1.1 bytes per weight instead of 4.
#pragma once
#include <cstdint>

#include "tensor/tensor.h"

namespace pf::cpu {

// y(M,N) = x(M,K) * W(N,K)^T (+ beta*y). W: contiguous (N, K) F32, BF16 or Q8 (a group that
// is a multiple of 16 or the whole row). Up to 8 rows: a threaded GEMV that converts each
// weight vector in registers; more rows: blocks of W widened to f32 in a per-thread buffer,
// then oneDNN's sgemm.
void linear_fwd(int64_t M, int64_t N, int64_t K, const float* x, const Tensor& W, float beta,
                float* y);

// out: (n, D) = W[ids[i]], widened to f32; W: (V, D) of any weight dtype.
void embedding_fwd(int64_t n, const int32_t* ids, const Tensor& W, float* out);

// Rows [r0, r1) of W (N, K) widened to f32 into out (r1 - r0, K).
void widen_rows(const Tensor& W, int64_t r0, int64_t r1, float* out);

// Reference: the same product by scalar loops over W.to_vector() (tests only).
void linear_fwd_reference(int64_t M, int64_t N, int64_t K, const float* x, const Tensor& W,
                          float* y);

}  // namespace pf::cpu
