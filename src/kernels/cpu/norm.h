// Row-wise normalisations over the last dimension. x, y: (rows, dim).
// Backward kernels accumulate into dx, dw, db.
#pragma once
#include <cstdint>

namespace pf::cpu {

// y = x / sqrt(mean(x^2) + eps) * w; rstd: (rows) saved for backward. w may be null (no weight).
void rmsnorm_fwd(int64_t rows, int64_t dim, float eps, const float* x, const float* w, float* y,
                 float* rstd);
void rmsnorm_bwd(int64_t rows, int64_t dim, const float* x, const float* w, const float* rstd,
                 const float* dy, float* dx, float* dw);

// y = (x - mean) / sqrt(var + eps) * w + b; mean, rstd: (rows).
void layernorm_fwd(int64_t rows, int64_t dim, float eps, const float* x, const float* w,
                   const float* b, float* y, float* mean, float* rstd);
void layernorm_bwd(int64_t rows, int64_t dim, const float* x, const float* w, const float* mean,
                   const float* rstd, const float* dy, float* dx, float* dw, float* db);

}  // namespace pf::cpu
