#include "kernels/cpu/rope.h"

#include <cmath>
#include <vector>

namespace pf::cpu {

namespace {
// cos/sin tables: (T, hd/2), angles in double so long positions stay accurate.
void rope_tables(int64_t T, int64_t hd, int64_t pos0, float theta, std::vector<float>& c,
                 std::vector<float>& s) {
  const int64_t half = hd / 2;
  c.resize(T * half);
  s.resize(T * half);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) {
      double inv_freq = std::pow(static_cast<double>(theta), -2.0 * i / static_cast<double>(hd));
      double a = static_cast<double>(pos0 + t) * static_cast<float>(inv_freq);
      c[t * half + i] = static_cast<float>(std::cos(a));
      s[t * half + i] = static_cast<float>(std::sin(a));
    }
}

// Every layer (and its backward) asks for the same table; keep the last one per thread.
struct TableCache {
  int64_t T = -1, hd = -1, pos0 = -1;
  float theta = 0;
  std::vector<float> c, s;
};

const TableCache& cached_tables(int64_t T, int64_t hd, int64_t pos0, float theta) {
  thread_local TableCache cache;
  if (cache.T != T || cache.hd != hd || cache.pos0 != pos0 || cache.theta != theta) {
    rope_tables(T, hd, pos0, theta, cache.c, cache.s);
    cache.T = T, cache.hd = hd, cache.pos0 = pos0, cache.theta = theta;
  }
  return cache;
}

void rope_apply(int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0, float theta,
                const float* x, float* y, float sign, bool accumulate) {
  const TableCache& tc = cached_tables(T, hd, pos0, theta);
  const std::vector<float>& c = tc.c;
  const std::vector<float>& s = tc.s;
  const int64_t half = hd / 2;
#pragma omp parallel for collapse(2) schedule(static) if (B * T * H * hd > 32768)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const float* ct = c.data() + t * half;
      const float* st = s.data() + t * half;
      for (int64_t h = 0; h < H; ++h) {
        const int64_t off = ((b * T + t) * H + h) * hd;
        const float* xi = x + off;
        float* yi = y + off;
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          const float x1 = xi[i], x2 = xi[i + half];
          const float sn = sign * st[i];
          const float r1 = x1 * ct[i] - x2 * sn;
          const float r2 = x2 * ct[i] + x1 * sn;
          if (accumulate) {
            yi[i] += r1;
            yi[i + half] += r2;
          } else {
            yi[i] = r1;
            yi[i + half] = r2;
          }
        }
      }
    }
}
}  // namespace

void rope_fwd(int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0, float theta,
              const float* x, float* y) {
  rope_apply(B, T, H, hd, pos0, theta, x, y, 1.0f, false);
}

void rope_bwd(int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0, float theta,
              const float* dy, float* dx) {
  rope_apply(B, T, H, hd, pos0, theta, dy, dx, -1.0f, true);
}

}  // namespace pf::cpu
