#include "kernels/cpu/gated_norm.h"

#include <omp.h>

#include <cmath>
#include <vector>

#include "base/error.h"
#include "kernels/cpu/simd.h"

namespace pf::cpu {

namespace {
using simd::v16;
inline float sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }
PF_SIMD_INLINE v16 sigmoid(v16 z) { return 1.0f / (1.0f + simd::exp(-z)); }

// v (D) = x * silu(z), in explicit vectors: the compiler does not vectorise std::exp.
void gate_row(int64_t D, const float* x, const float* z, float* v) {
  int64_t j = 0;
  for (; j + 16 <= D; j += 16) {
    const v16 zv = simd::load(z + j);
    simd::store(v + j, simd::load(x + j) * zv * sigmoid(zv));
  }
  for (; j < D; ++j) v[j] = x[j] * z[j] * sigmoid(z[j]);
}

// dx += dv * silu(z); dz += dv * x * silu'(z) with silu'(z) = s (1 + z (1 - s)), s = sigmoid(z).
void gate_row_bwd(int64_t D, const float* x, const float* z, const float* dv, float* dx,
                  float* dz) {
  int64_t j = 0;
  for (; j + 16 <= D; j += 16) {
    const v16 zv = simd::load(z + j), s = sigmoid(zv), g = simd::load(dv + j);
    if (dx) simd::store(dx + j, simd::load(dx + j) + g * zv * s);
    if (dz)
      simd::store(dz + j,
                  simd::load(dz + j) + g * simd::load(x + j) * s * (1.0f + zv * (1.0f - s)));
  }
  for (; j < D; ++j) {
    const float s = sigmoid(z[j]);
    if (dx) dx[j] += dv[j] * z[j] * s;
    if (dz) dz[j] += dv[j] * x[j] * s * (1.0f + z[j] * (1.0f - s));
  }
}

void check_groups(int64_t D, int64_t groups) {
  PF_CHECK(groups > 0 && D % groups == 0, "gated_rmsnorm: dim ", D, " not divisible by ", groups,
           " groups");
}
}  // namespace

void gated_rmsnorm_fwd(int64_t rows, int64_t D, int64_t groups, float eps, const float* x,
                       const float* z, const float* w, float* y, float* rstd) {
  check_groups(D, groups);
  const int64_t Dg = D / groups;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = y + r * D;  // holds v = x * silu(z) until scaled
    gate_row(D, x + r * D, z + r * D, yr);
    for (int64_t k = 0; k < groups; ++k) {
      float* yg = yr + k * Dg;
      float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
      for (int64_t j = 0; j < Dg; ++j) ss += yg[j] * yg[j];
      const float rs = 1.0f / std::sqrt(ss / Dg + eps);
      if (rstd) rstd[r * groups + k] = rs;
      const float* wg = w + k * Dg;
#pragma omp simd
      for (int64_t j = 0; j < Dg; ++j) yg[j] *= rs * wg[j];
    }
  }
}

void gated_rmsnorm_bwd(int64_t rows, int64_t D, int64_t groups, const float* x, const float* z,
                       const float* w, const float* rstd, const float* dy, float* dx, float* dz,
                       float* dw) {
  check_groups(D, groups);
  const int64_t Dg = D / groups;
  const int nt = omp_get_max_threads();
  std::vector<float> dw_part(dw ? nt * D : 0, 0.0f);  // (threads, D), summed in fixed order
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> v(D), dv(D);  // (D) gated input and its gradient
    float* dwp = dw ? dw_part.data() + omp_get_thread_num() * D : nullptr;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float *xr = x + r * D, *zr = z + r * D, *dyr = dy + r * D;
      gate_row(D, xr, zr, v.data());
      for (int64_t k = 0; k < groups; ++k) {
        const int64_t o = k * Dg;
        const float rs = rstd[r * groups + k];
        float dot = 0.0f;  // sum_j dy_j w_j v_j
#pragma omp simd reduction(+ : dot)
        for (int64_t j = o; j < o + Dg; ++j) dot += dyr[j] * w[j] * v[j];
        const float c = dot * rs * rs * rs / Dg;
#pragma omp simd
        for (int64_t j = o; j < o + Dg; ++j) dv[j] = dyr[j] * w[j] * rs - v[j] * c;
        if (dwp)
          for (int64_t j = o; j < o + Dg; ++j) dwp[j] += dyr[j] * v[j] * rs;
      }
      gate_row_bwd(D, xr, zr, dv.data(), dx ? dx + r * D : nullptr, dz ? dz + r * D : nullptr);
    }
  }
  if (dw)
    for (int t = 0; t < nt; ++t)
      for (int64_t j = 0; j < D; ++j) dw[j] += dw_part[t * D + j];
}

}  // namespace pf::cpu
