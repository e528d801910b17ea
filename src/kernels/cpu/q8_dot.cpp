#include "kernels/cpu/q8_dot.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace pf::cpu {

namespace {
constexpr int64_t kG = 32;

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
// Sum over k of s_w[g] s_x[g] (w . x) over groups of 32, 64 weights per step: |w| as the
// unsigned operand and x with w's sign as the signed one give w . x exactly in int32 lanes
// (lanes 0-7 hold the first group, 8-15 the second).
float row_dot(const int8_t* w, const float* ws, const int8_t* xq, const float* xs, int64_t K) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i lanes_hi = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t k = 0;
  auto step = [&](__m512i wv, __m512i xv, int64_t g, __m512& acc) {
    const __m512i aw = _mm512_abs_epi8(wv);
    const __m512i sx = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(wv), zero, xv);
    const __m512i d = _mm512_dpbusd_epi32(zero, aw, sx);
    // Scales of the two groups, each over its 8 lanes.
    const __m512 s2 = _mm512_castpd_ps(_mm512_castpd128_pd512(_mm_castps_pd(
        _mm_set_ps(0.0f, 0.0f, ws[g + 1] * xs[g + 1], ws[g] * xs[g]))));
    const __m512 sc = _mm512_permutexvar_ps(lanes_hi, s2);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), sc, acc);
  };
  for (; k + 128 <= K; k += 128) {
    step(_mm512_loadu_si512(w + k), _mm512_loadu_si512(xq + k), k / kG, acc0);
    step(_mm512_loadu_si512(w + k + 64), _mm512_loadu_si512(xq + k + 64), k / kG + 2, acc1);
  }
  for (; k < K; k += 64) {
    // The last 32 or 64: a masked load zeroes the lanes past K (their products are 0).
    const __mmask64 m = K - k >= 64 ? ~__mmask64{0} : (__mmask64{1} << (K - k)) - 1;
    const int64_t g = k / kG;
    const float s_next = K - k >= 64 ? ws[g + 1] * xs[g + 1] : 0.0f;
    const __m512i wv = _mm512_maskz_loadu_epi8(m, w + k), xv = _mm512_maskz_loadu_epi8(m, xq + k);
    const __m512i aw = _mm512_abs_epi8(wv);
    const __m512i sx = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(wv), zero, xv);
    const __m512i d = _mm512_dpbusd_epi32(zero, aw, sx);
    const __m512 s2 = _mm512_castpd_ps(_mm512_castpd128_pd512(
        _mm_castps_pd(_mm_set_ps(0.0f, 0.0f, s_next, ws[g] * xs[g]))));
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_permutexvar_ps(lanes_hi, s2), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}
constexpr bool kIntPath = true;
#elif defined(__AVX2__)
// One group of 32 per step: vpmaddubsw(|w|, sign(x, w)) gives pairwise int16 sums (at most
// 2 * 127 * 127, no saturation), vpmaddwd with ones sums them to int32 lanes.
float row_dot(const int8_t* w, const float* ws, const int8_t* xq, const float* xs, int64_t K) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  auto step = [&](int64_t k, __m256& acc) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + k));
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    const __m256 d = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
    acc = _mm256_fmadd_ps(d, _mm256_set1_ps(ws[k / kG] * xs[k / kG]), acc);
  };
  int64_t k = 0;
  for (; k + 64 <= K; k += 64) step(k, acc0), step(k + 32, acc1);
  if (k < K) step(k, acc0);
  const __m256 a = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
constexpr bool kIntPath = true;
#else
float row_dot(const int8_t* w, const float* ws, const int8_t* xq, const float* xs, int64_t K) {
  float acc = 0;
  for (int64_t g = 0; g < K / kG; ++g) {
    int32_t d = 0;
    for (int64_t i = g * kG; i < (g + 1) * kG; ++i) d += int32_t{w[i]} * xq[i];
    acc += ws[g] * xs[g] * static_cast<float>(d);
  }
  return acc;
}
constexpr bool kIntPath = false;
#endif
}  // namespace

bool q8_int_dot_available() { return kIntPath; }

void quantize_activations_q8(const float* x, int64_t K, int8_t* q, float* s) {
  for (int64_t g = 0; g < K / kG; ++g) {
    const float* xg = x + g * kG;
    float amax = 0.0f;
    for (int64_t i = 0; i < kG; ++i) amax = std::max(amax, std::fabs(xg[i]));
    const float d = amax / 127.0f, inv = d > 0.0f ? 1.0f / d : 0.0f;
    s[g] = d;
    for (int64_t i = 0; i < kG; ++i)
      q[g * kG + i] = static_cast<int8_t>(std::nearbyint(std::clamp(xg[i] * inv, -127.0f, 127.0f)));
  }
}

void q8_gemv(int64_t M, int64_t N, int64_t K, const float* x, const int8_t* W,
             const float* scales, float beta, float* y) {
  const int64_t groups = K / kG;
  thread_local std::vector<int8_t> xq;
  thread_local std::vector<float> xs;
  xq.resize(static_cast<size_t>(M * K));
  xs.resize(static_cast<size_t>(M * groups));
  for (int64_t m = 0; m < M; ++m)
    quantize_activations_q8(x + m * K, K, xq.data() + m * K, xs.data() + m * groups);
  const int8_t* q = xq.data();  // the caller's buffers: each thread_local is per thread
  const float* s = xs.data();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const int8_t* w = W + n * K;
    const float* ws = scales + n * groups;
    for (int64_t m = 0; m < M; ++m) {
      const float v = row_dot(w, ws, q + m * K, s + m * groups, K);
      float& o = y[m * N + n];
      o = beta == 0.0f ? v : beta * o + v;
    }
  }
}

}  // namespace pf::cpu
