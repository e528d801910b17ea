#include "kernels/cpu/norm.h"

#include <omp.h>

#include <cmath>
#include <vector>

namespace pf::cpu {

namespace {
// Sums per-thread partial rows of length dim into out (deterministic: fixed order).
void reduce_partials(const std::vector<float>& part, int nthreads, int64_t dim, float* out) {
  for (int t = 0; t < nthreads; ++t)
    for (int64_t j = 0; j < dim; ++j) out[j] += part[t * dim + j];
}
}  // namespace

void rmsnorm_fwd(int64_t rows, int64_t dim, float eps, const float* x, const float* w, float* y,
                 float* rstd) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < dim; ++j) ss += xr[j] * xr[j];
    float rs = 1.0f / std::sqrt(ss / dim + eps);
    if (rstd) rstd[r] = rs;
    if (w) {
#pragma omp simd
      for (int64_t j = 0; j < dim; ++j) yr[j] = xr[j] * rs * w[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < dim; ++j) yr[j] = xr[j] * rs;
    }
  }
}

void rmsnorm_bwd(int64_t rows, int64_t dim, const float* x, const float* w, const float* rstd,
                 const float* dy, float* dx, float* dw) {
  const int nt = omp_get_max_threads();
  std::vector<float> dw_part(dw ? nt * dim : 0, 0.0f);
#pragma omp parallel num_threads(nt)
  {
    float* dwp = dw ? dw_part.data() + omp_get_thread_num() * dim : nullptr;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * dim;
      const float* dyr = dy + r * dim;
      float* dxr = dx + r * dim;
      const float rs = rstd[r];
      float dot = 0.0f;  // sum_j dy_j * w_j * x_j
#pragma omp simd reduction(+ : dot)
      for (int64_t j = 0; j < dim; ++j) dot += dyr[j] * (w ? w[j] : 1.0f) * xr[j];
      const float c = dot * rs * rs * rs / dim;
#pragma omp simd
      for (int64_t j = 0; j < dim; ++j) dxr[j] += dyr[j] * (w ? w[j] : 1.0f) * rs - xr[j] * c;
      if (dwp) {
#pragma omp simd
        for (int64_t j = 0; j < dim; ++j) dwp[j] += dyr[j] * xr[j] * rs;
      }
    }
  }
  if (dw) reduce_partials(dw_part, nt, dim, dw);
}

void layernorm_fwd(int64_t rows, int64_t dim, float eps, const float* x, const float* w,
                   const float* b, float* y, float* mean, float* rstd) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < dim; ++j) s += xr[j];
    const float m = s / dim;
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (int64_t j = 0; j < dim; ++j) v += (xr[j] - m) * (xr[j] - m);
    const float rs = 1.0f / std::sqrt(v / dim + eps);
    mean[r] = m;
    rstd[r] = rs;
#pragma omp simd
    for (int64_t j = 0; j < dim; ++j)
      yr[j] = (xr[j] - m) * rs * (w ? w[j] : 1.0f) + (b ? b[j] : 0.0f);
  }
}

void layernorm_bwd(int64_t rows, int64_t dim, const float* x, const float* w, const float* mean,
                   const float* rstd, const float* dy, float* dx, float* dw, float* db) {
  const int nt = omp_get_max_threads();
  std::vector<float> dw_part(dw ? nt * dim : 0, 0.0f), db_part(db ? nt * dim : 0, 0.0f);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    float* dwp = dw ? dw_part.data() + t * dim : nullptr;
    float* dbp = db ? db_part.data() + t * dim : nullptr;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * dim;
      const float* dyr = dy + r * dim;
      const float m = mean[r], rs = rstd[r];
      float s1 = 0.0f, s2 = 0.0f;  // mean(dxhat), mean(dxhat * xhat)
#pragma omp simd reduction(+ : s1, s2)
      for (int64_t j = 0; j < dim; ++j) {
        float dxh = dyr[j] * (w ? w[j] : 1.0f);
        s1 += dxh;
        s2 += dxh * (xr[j] - m) * rs;
      }
      s1 /= dim;
      s2 /= dim;
      float* dxr = dx + r * dim;
#pragma omp simd
      for (int64_t j = 0; j < dim; ++j) {
        float xh = (xr[j] - m) * rs;
        float dxh = dyr[j] * (w ? w[j] : 1.0f);
        dxr[j] += rs * (dxh - s1 - xh * s2);
        if (dwp) dwp[j] += dyr[j] * xh;
        if (dbp) dbp[j] += dyr[j];
      }
    }
  }
  if (dw) reduce_partials(dw_part, nt, dim, dw);
  if (db) reduce_partials(db_part, nt, dim, db);
}

}  // namespace pf::cpu
