// Portable 16-lane float vectors (GCC/Clang vector extensions): one AVX-512 register
// with -march=native on this machine, two AVX2 registers elsewhere. Used by kernels
// that need explicit register blocking without intrinsics.
#pragma once
#include <cstdint>
#include <cstring>

namespace pf::cpu::simd {

// Forced inline: with AVX2 a v16 is two registers and GCC passes it through memory across
// a call, so an out-of-line exp (GCC's choice at some call sites) costs a store and reload
// per lane group, several times the arithmetic.
#define PF_SIMD_INLINE inline __attribute__((always_inline))

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

PF_SIMD_INLINE v16 load(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
PF_SIMD_INLINE void store(float* p, v16 v) { std::memcpy(p, &v, sizeof v); }
PF_SIMD_INLINE v16 splat(float x) { return v16{} + x; }
// Loads/stores of the first n <= 16 floats; the rest of a loaded vector is zero.
PF_SIMD_INLINE v16 load_n(const float* p, int64_t n) {
  if (n == 16) return load(p);
  v16 v = splat(0.0f);
  std::memcpy(&v, p, n * sizeof(float));
  return v;
}
PF_SIMD_INLINE void store_n(float* p, v16 v, int64_t n) {
  if (n == 16) return store(p, v);
  std::memcpy(p, &v, n * sizeof(float));
}
PF_SIMD_INLINE v16 vmax(v16 a, v16 b) { return a > b ? a : b; }
PF_SIMD_INLINE v16 max_of(v16 a, v16 b, v16 c, v16 d) { return vmax(vmax(a, b), vmax(c, d)); }
// Horizontal sum and max as a tree of halvings (4 vector steps, not 15 dependent scalar
// ones: a decode step does one per key and head).
PF_SIMD_INLINE float hsum(v16 v) {
  typedef float v8 __attribute__((vector_size(32)));
  typedef float v4 __attribute__((vector_size(16)));
  const v8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
               __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  const v4 b =
      __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] + b[2]) + (b[1] + b[3]);
}
PF_SIMD_INLINE float hmax(v16 v) {
  typedef float v8 __attribute__((vector_size(32)));
  typedef float v4 __attribute__((vector_size(16)));
  const v8 lo = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7),
           hi = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  const v8 a = lo > hi ? lo : hi;
  const v4 alo = __builtin_shufflevector(a, a, 0, 1, 2, 3),
           ahi = __builtin_shufflevector(a, a, 4, 5, 6, 7);
  const v4 b = alo > ahi ? alo : ahi;
  const float m0 = b[0] > b[2] ? b[0] : b[2], m1 = b[1] > b[3] ? b[1] : b[3];
  return m0 > m1 ? m0 : m1;
}

// exp(x) with ~1 ulp error over the float range (Cephes-style polynomial on a
// range-reduced argument); exactly 0 below -87.3 so masked (-inf) entries vanish.
PF_SIMD_INLINE v16 exp(v16 x) {
  const v16 lo = splat(-87.3365447504f), hi = splat(88.3762626647949f);
  v16 xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  v16 fx = xc * 1.44269504088896341f;
  fx = fx + (fx < 0.0f ? splat(-0.5f) : splat(0.5f));
  const v16i n = __builtin_convertvector(fx, v16i);  // round to nearest
  const v16 nf = __builtin_convertvector(n, v16);
  v16 r = xc - nf * 0.693359375f;
  r = r - nf * -2.12194440e-4f;
  v16 p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  v16 y = p * r * r + r + 1.0f;
  const v16i bits = (n + 127) << 23;
  v16 pow2n;
  std::memcpy(&pow2n, &bits, sizeof pow2n);
  y = y * pow2n;
  return x < lo ? splat(0.0f) : y;
}

}  // namespace pf::cpu::simd
