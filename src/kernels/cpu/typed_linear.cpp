#include "kernels/cpu/typed_linear.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/q8_dot.h"
#include "kernels/cpu/simd.h"
#include "tensor/dtype_convert.h"

namespace pf::cpu {

namespace {
using simd::v16;
typedef uint16_t v16u16 __attribute__((vector_size(32)));

// 16 bf16 -> f32: the bf16 bits are the high half of the f32 bits.
PF_SIMD_INLINE v16 load_bf16(const uint16_t* p) {
  v16u16 h;
  std::memcpy(&h, p, sizeof h);
  const simd::v16i w = __builtin_convertvector(h, simd::v16i) << 16;
  v16 f;
  std::memcpy(&f, &w, sizeof f);
  return f;
}
PF_SIMD_INLINE v16 load_i8(const int8_t* p) {
  // Intrinsics: GCC compiles __builtin_convertvector from int8 lanes to scalar inserts.
  v16 f;
#if defined(__AVX512F__)
  const __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  std::memcpy(&f, &w, sizeof f);
#elif defined(__AVX2__)
  const __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  const __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8))));
  std::memcpy(&f, &lo, sizeof lo);
  std::memcpy(reinterpret_cast<char*>(&f) + sizeof lo, &hi, sizeof hi);
#else
  for (int i = 0; i < 16; ++i) f[i] = p[i];
#endif
  return f;
}
PF_SIMD_INLINE v16 load_w(const uint16_t* p) { return load_bf16(p); }
PF_SIMD_INLINE v16 load_w(const int8_t* p) { return load_i8(p); }
PF_SIMD_INLINE float one_w(const uint16_t* p) { return bf16_to_f32(*p); }
PF_SIMD_INLINE float one_w(const int8_t* p) { return *p; }

// acc[m] (+ acc2[m]) += x[m, k0:k1] . (s * w[k0:k1]) for MB rows of x (row stride K). The
// weight vector is converted once and reused by every row. The caller owns the
// accumulators and sums them at the end, so no add joins them per group: with few rows the
// loop is bound by FMA latency, and every extra dependency shows.
template <int MB, bool kScaled, typename T>
PF_SIMD_INLINE void segment_dot(const T* w, const float* x, int64_t K, int64_t k0, int64_t k1,
                                float s, v16* acc, v16* acc2, float* tail) {
  const v16 sv = simd::splat(s);
  int64_t k = k0;
  if constexpr (kScaled) {
    // A group of 32: the unscaled dot in one register, then one FMA with the scale (three
    // multiply-adds per 32 weights, not four).
    if (k1 - k0 == 32) {
      const v16 a = load_w(w + k), b = load_w(w + k + 16);
      for (int m = 0; m < MB; ++m) {
        const v16 t = simd::load(x + m * K + k) * a + simd::load(x + m * K + k + 16) * b;
        acc[m] += t * sv;
      }
      return;
    }
  }
  for (; k + 32 <= k1; k += 32) {
    v16 a = load_w(w + k), b = load_w(w + k + 16);
    if constexpr (kScaled) a *= sv, b *= sv;
    for (int m = 0; m < MB; ++m) {
      acc[m] += simd::load(x + m * K + k) * a;
      acc2[m] += simd::load(x + m * K + k + 16) * b;
    }
  }
  for (; k + 16 <= k1; k += 16) {
    v16 a = load_w(w + k);
    if constexpr (kScaled) a *= sv;
    for (int m = 0; m < MB; ++m) acc[m] += simd::load(x + m * K + k) * a;
  }
  for (; k < k1; ++k) {
    const float wk = kScaled ? s * one_w(w + k) : one_w(w + k);
    for (int m = 0; m < MB; ++m) tail[m] += x[m * K + k] * wk;
  }
}

// y[m, n] for MB rows of x and weight row n: w its values, scales null (bf16) or its
// group scales (Q8, group G). Even and odd groups use separate accumulators: four FMA
// chains per row instead of two.
template <int MB, typename T>
PF_SIMD_INLINE void row_dot(const T* w, const float* scales, int64_t G, const float* x,
                            int64_t K, float* out) {
  v16 acc[4][MB] = {};
  float tail[MB] = {};
  if (!scales) {
    segment_dot<MB, false>(w, x, K, 0, K, 1.0f, acc[0], acc[1], tail);
  } else {
    int64_t g = 0, k0 = 0;
    for (; k0 + 2 * G <= K; g += 2, k0 += 2 * G) {
      segment_dot<MB, true>(w, x, K, k0, k0 + G, scales[g], acc[0], acc[1], tail);
      segment_dot<MB, true>(w, x, K, k0 + G, k0 + 2 * G, scales[g + 1], acc[2], acc[3], tail);
    }
    if (k0 < K) segment_dot<MB, true>(w, x, K, k0, K, scales[g], acc[0], acc[1], tail);
  }
  for (int m = 0; m < MB; ++m)
    out[m] = simd::hsum((acc[0][m] + acc[1][m]) + (acc[2][m] + acc[3][m])) + tail[m];
}

template <typename T>
void gemv(int64_t M, int64_t N, int64_t K, const float* x, const T* W, const float* scales,
          int64_t G, float beta, float* y) {
  const int64_t groups = scales ? K / G : 0;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* w = W + n * K;
    const float* s = scales ? scales + n * groups : nullptr;
    float out[4];
    for (int64_t m0 = 0; m0 < M; m0 += 4) {
      const int64_t mb = std::min<int64_t>(4, M - m0);
      const float* xm = x + m0 * K;
      switch (mb) {
        case 1:
          row_dot<1>(w, s, G, xm, K, out);
          break;
        case 2:
          row_dot<2>(w, s, G, xm, K, out);
          break;
        case 3:
          row_dot<3>(w, s, G, xm, K, out);
          break;
        default:
          row_dot<4>(w, s, G, xm, K, out);
      }
      for (int64_t m = 0; m < mb; ++m) {
        float& o = y[(m0 + m) * N + n];
        o = beta == 0.0f ? out[m] : beta * o + out[m];
      }
    }
  }
}

void check_weight(const Tensor& W, int64_t N, int64_t K) {
  PF_CHECK(W.dim() == 2 && W.size(0) == N && W.size(1) == K && W.is_contiguous(),
           "linear: weight ", shape_str(W.shape()), " is not a contiguous (", N, ", ", K,
           ") matrix");
  PF_CHECK(W.dtype() == DType::F32 || W.dtype() == DType::BF16 || W.dtype() == DType::Q8,
           "linear: weights of dtype ", dtype_name(W.dtype()), " are not supported");
  PF_CHECK(W.dtype() != DType::Q8 || W.group() % 16 == 0 || W.group() == K,
           "linear: int8 group ", W.group(), " is neither a multiple of 16 nor the row length ",
           K);
}

// Rows per widened block of the sgemm path: about 2 MiB of f32, so a block stays in L2/L3
// while sgemm packs it.
int64_t block_rows(int64_t N, int64_t K) {
  return std::clamp<int64_t>(((int64_t{1} << 19) / std::max<int64_t>(K, 1)) / 16 * 16, 64, N);
}
}  // namespace

void widen_rows(const Tensor& W, int64_t r0, int64_t r1, float* out) {
  const int64_t K = W.size(1), n = (r1 - r0) * K;
  switch (W.dtype()) {
    case DType::F32:
      std::memcpy(out, W.data() + r0 * K, n * sizeof(float));
      return;
    case DType::BF16: {
      const uint16_t* src = static_cast<const uint16_t*>(W.raw()) + r0 * K;
      int64_t i = 0;
      for (; i + 16 <= n; i += 16) simd::store(out + i, load_bf16(src + i));
      for (; i < n; ++i) out[i] = bf16_to_f32(src[i]);
      return;
    }
    case DType::Q8: {
      const int8_t* src = static_cast<const int8_t*>(W.raw()) + r0 * K;
      const int64_t G = W.group();
      const float* s = W.q8_scales() + r0 * K / G;
      for (int64_t g = 0; g < n / G; ++g) {
        const v16 sv = simd::splat(s[g]);
        int64_t i = g * G;
        for (; i + 16 <= (g + 1) * G; i += 16) simd::store(out + i, load_i8(src + i) * sv);
        for (; i < (g + 1) * G; ++i) out[i] = s[g] * src[i];
      }
      return;
    }
    default:
      fail("widen_rows: unsupported dtype ", dtype_name(W.dtype()));
  }
}

void linear_fwd(int64_t M, int64_t N, int64_t K, const float* x, const Tensor& W, float beta,
                float* y) {
  check_weight(W, N, K);
  if (W.dtype() == DType::F32) return linear_fwd(M, N, K, x, W.data(), beta, y);
  if (M == 0 || N == 0) return;
  if (M <= 8) {
    if (W.dtype() == DType::BF16)
      return gemv(M, N, K, x, static_cast<const uint16_t*>(W.raw()), nullptr, 0, beta, y);
    if (W.group() == 32 && K % 32 == 0 && q8_int_dot_available())
      return q8_gemv(M, N, K, x, static_cast<const int8_t*>(W.raw()), W.q8_scales(), beta, y);
    return gemv(M, N, K, x, static_cast<const int8_t*>(W.raw()), W.q8_scales(), W.group(), beta,
                y);
  }
  // Many rows: the product is compute bound, so widening each weight once per call costs
  // little next to M multiply-adds per weight.
  const int64_t nb = block_rows(N, K);
  thread_local std::vector<float> block;
  block.resize(static_cast<size_t>(nb * K));
  float* buf = block.data();  // the caller's buffer: each OpenMP thread has its own `block`
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t rows = std::min(nb, N - n0);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r += 16)
      widen_rows(W, n0 + r, n0 + std::min(rows, r + 16), buf + r * K);
    gemm(false, true, M, rows, K, 1.0f, x, K, buf, K, beta, y + n0, N);
  }
}

void embedding_fwd(int64_t n, const int32_t* ids, const Tensor& W, float* out) {
  PF_CHECK(W.dim() == 2 && W.is_contiguous(), "embedding: table ", shape_str(W.shape()),
           " is not a contiguous matrix");
  const int64_t V = W.size(0), D = W.size(1);
  for (int64_t i = 0; i < n; ++i)
    PF_CHECK(ids[i] >= 0 && ids[i] < V, "token id ", ids[i], " is outside the vocabulary [0, ", V,
             ")");
#pragma omp parallel for schedule(static) if (n * D > 65536)
  for (int64_t i = 0; i < n; ++i) widen_rows(W, ids[i], ids[i] + 1, out + i * D);
}

void linear_fwd_reference(int64_t M, int64_t N, int64_t K, const float* x, const Tensor& W,
                          float* y) {
  const std::vector<float> w = W.to_vector();
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(x[m * K + k]) * w[n * K + k];
      y[m * N + n] = static_cast<float>(acc);
    }
}

}  // namespace pf::cpu
