#include "kernels/cpu/rope.h"

#include <cmath>
#include <vector>

namespace pf::cpu {

namespace {
// cos/sin tables: (T, hd/2), angles in double so long positions stay accurate.
int64_t rotated(int64_t hd, const RopeStyle& st) {
  return st.rotary_dim > 0 && st.rotary_dim < hd ? st.rotary_dim : hd;
}

std::vector<float> inv_freqs(int64_t hd, const RopeStyle& st) {
  const int64_t rot = rotated(hd, st), half = rot / 2;
  std::vector<float> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) {
    const double e = st.linspace ? (half > 1 ? static_cast<double>(i) / (half - 1) : 0.0)
                                 : 2.0 * i / static_cast<double>(rot);
    inv_freq[i] = static_cast<float>(std::pow(static_cast<double>(st.theta), -e));
  }
  return inv_freq;
}

// Rotates the pairs of one head's first `rot` dims; the rest pass through (or add).
inline void rotate_head(int64_t rot, const RopeStyle& st, const float* ct, const float* stab,
                        int64_t hd, const float* xi, float* yi, float sign, bool accumulate) {
  const int64_t half = rot / 2;
  const int64_t step = st.interleaved ? 2 : 1, partner = st.interleaved ? 1 : half;
#pragma omp simd
  for (int64_t i = 0; i < half; ++i) {
    const int64_t i1 = i * step, i2 = i1 + partner;
    const float x1 = xi[i1], x2 = xi[i2];
    const float sn = sign * stab[i];
    const float r1 = x1 * ct[i] - x2 * sn;
    const float r2 = x2 * ct[i] + x1 * sn;
    if (accumulate) {
      yi[i1] += r1;
      yi[i2] += r2;
    } else {
      yi[i1] = r1;
      yi[i2] = r2;
    }
  }
  for (int64_t i = rot; i < hd; ++i) yi[i] = accumulate ? yi[i] + xi[i] : xi[i];
}

void rope_tables(int64_t T, int64_t hd, int64_t pos0, const RopeStyle& st, std::vector<float>& c,
                 std::vector<float>& s) {
  const int64_t half = rotated(hd, st) / 2;
  c.resize(T * half);
  s.resize(T * half);
  const std::vector<float> inv_freq = inv_freqs(hd, st);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double a = static_cast<double>(pos0 + t) * inv_freq[i];
      c[t * half + i] = static_cast<float>(std::cos(a));
      s[t * half + i] = static_cast<float>(std::sin(a));
    }
}

// Every layer (and its backward) asks for the same table; keep the last one per thread.
struct TableCache {
  int64_t T = -1, hd = -1, pos0 = -1;
  RopeStyle style;
  std::vector<float> c, s;
};

const TableCache& cached_tables(int64_t T, int64_t hd, int64_t pos0, const RopeStyle& st) {
  thread_local TableCache cache;
  if (cache.T != T || cache.hd != hd || cache.pos0 != pos0 || cache.style.theta != st.theta ||
      cache.style.linspace != st.linspace || cache.style.rotary_dim != st.rotary_dim) {
    rope_tables(T, hd, pos0, st, cache.c, cache.s);
    cache.T = T, cache.hd = hd, cache.pos0 = pos0, cache.style = st;
  }
  return cache;
}

void rope_apply(int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0, const RopeStyle& st,
                const float* x, float* y, float sign, bool accumulate) {
  const TableCache& tc = cached_tables(T, hd, pos0, st);
  const std::vector<float>& c = tc.c;
  const std::vector<float>& s = tc.s;
  const int64_t rot = rotated(hd, st), half = rot / 2;
#pragma omp parallel for collapse(2) schedule(static) if (B * T * H * hd > 32768)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const float* ct = c.data() + t * half;
      const float* stab = s.data() + t * half;
      for (int64_t h = 0; h < H; ++h) {
        const int64_t off = ((b * T + t) * H + h) * hd;
        rotate_head(rot, st, ct, stab, hd, x + off, y + off, sign, accumulate);
      }
    }
}
}  // namespace

void rope_fwd(int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0, const RopeStyle& style,
              const float* x, float* y) {
  rope_apply(B, T, H, hd, pos0, style, x, y, 1.0f, false);
}

void rope_fwd_rows(int64_t rows, int64_t H, int64_t hd, const int64_t* pos, const RopeStyle& st,
                   const float* x, float* y) {
  const int64_t rot = rotated(hd, st), half = rot / 2;
  const std::vector<float> inv_freq = inv_freqs(hd, st);
  std::vector<float> c(half), s(half);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < half; ++i) {  // angles in double, as the tables
      const double a = static_cast<double>(pos[r]) * inv_freq[i];
      c[i] = static_cast<float>(std::cos(a));
      s[i] = static_cast<float>(std::sin(a));
    }
    for (int64_t h = 0; h < H; ++h) {
      const int64_t off = (r * H + h) * hd;
      rotate_head(rot, st, c.data(), s.data(), hd, x + off, y + off, 1.0f, false);
    }
  }
}

void rope_bwd(int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0, const RopeStyle& style,
              const float* dy, float* dx) {
  rope_apply(B, T, H, hd, pos0, style, dy, dx, -1.0f, true);
}

}  // namespace pf::cpu
