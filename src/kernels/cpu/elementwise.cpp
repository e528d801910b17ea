#include "kernels/cpu/elementwise.h"

#include <cmath>

#include "base/rng.h"
#include "kernels/cpu/simd.h"

namespace pf::cpu {

void add_fwd(int64_t n, const float* a, const float* b, float* y) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void mul_fwd(int64_t n, const float* a, const float* b, float* y) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

void mul_bwd(int64_t n, const float* a, const float* b, const float* dy, float* da, float* db) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    if (da) da[i] += dy[i] * b[i];
    if (db) db[i] += dy[i] * a[i];
  }
}

void scale_fwd(int64_t n, float s, const float* a, float* y) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = s * a[i];
}

void axpy(int64_t n, float s, const float* x, float* y) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] += s * x[i];
}

namespace {
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
}  // namespace

void gelu_fwd(int64_t n, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kInvSqrt2));
}

void gelu_bwd(int64_t n, const float* x, const float* dy, float* dx) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; ++i) {
    float cdf = 0.5f * (1.0f + std::erf(x[i] * kInvSqrt2));
    float pdf = kInvSqrt2Pi * std::exp(-0.5f * x[i] * x[i]);
    dx[i] += dy[i] * (cdf + x[i] * pdf);
  }
}

namespace {
// Applies f to 16 lanes at a time (simd::exp is vectorised), with a scalar tail.
template <typename VecF, typename ScalarF>
void vector_map(int64_t n, VecF vf, ScalarF sf) {
  using simd::v16;
  const int64_t nv = n / 16;
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t b = 0; b < nv; ++b) vf(b * 16);
  for (int64_t i = nv * 16; i < n; ++i) sf(i);
}
PF_SIMD_INLINE simd::v16 vsigmoid(simd::v16 x) { return 1.0f / (1.0f + simd::exp(-x)); }
}  // namespace

void silu_fwd(int64_t n, const float* x, float* y) {
  vector_map(
      n,
      [&](int64_t i) {
        const simd::v16 v = simd::load(x + i);
        simd::store(y + i, v * vsigmoid(v));
      },
      [&](int64_t i) { y[i] = x[i] * sigmoid(x[i]); });
}

void silu_bwd(int64_t n, const float* x, const float* dy, float* dx) {
  vector_map(
      n,
      [&](int64_t i) {
        const simd::v16 v = simd::load(x + i), s = vsigmoid(v);
        simd::store(dx + i, simd::load(dx + i) + simd::load(dy + i) * s * (1.0f + v * (1.0f - s)));
      },
      [&](int64_t i) {
        const float s = sigmoid(x[i]);
        dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
      });
}

void swiglu_fwd(int64_t n, const float* g, const float* u, float* y) {
  vector_map(
      n,
      [&](int64_t i) {
        const simd::v16 v = simd::load(g + i);
        simd::store(y + i, v * vsigmoid(v) * simd::load(u + i));
      },
      [&](int64_t i) { y[i] = g[i] * sigmoid(g[i]) * u[i]; });
}

void swiglu_bwd(int64_t n, const float* g, const float* u, const float* dy, float* dg, float* du) {
  vector_map(
      n,
      [&](int64_t i) {
        const simd::v16 v = simd::load(g + i), s = vsigmoid(v), d = simd::load(dy + i);
        simd::store(dg + i,
                    simd::load(dg + i) + d * simd::load(u + i) * s * (1.0f + v * (1.0f - s)));
        simd::store(du + i, simd::load(du + i) + d * v * s);
      },
      [&](int64_t i) {
        const float s = sigmoid(g[i]);
        dg[i] += dy[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        du[i] += dy[i] * g[i] * s;
      });
}

bool dropout_keep(float p, uint64_t seed, int64_t i) {
  uint64_t x = seed ^ (static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ULL);
  uint64_t r = splitmix64(x);
  return static_cast<double>(r >> 11) * 0x1.0p-53 >= p;
}

void dropout_fwd(int64_t n, float p, uint64_t seed, const float* x, float* y) {
  const float keep_scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; ++i) y[i] = dropout_keep(p, seed, i) ? x[i] * keep_scale : 0.0f;
}

void dropout_bwd(int64_t n, float p, uint64_t seed, const float* dy, float* dx) {
  const float keep_scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; ++i)
    if (dropout_keep(p, seed, i)) dx[i] += dy[i] * keep_scale;
}

}  // namespace pf::cpu
