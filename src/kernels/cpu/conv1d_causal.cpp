#include "kernels/cpu/conv1d_causal.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "kernels/cpu/simd.h"

namespace pf::cpu {

// Tasks own (batch, block of time steps) and sweep whole rows of C channels, 16 at a time,
// so every load is contiguous; w is transposed to (K, C) for the same reason.
namespace {
using simd::v16;
constexpr int64_t kLanes = 16;
constexpr int64_t kTimeBlock = 64;  // time steps per task

using simd::load_n;
using simd::store_n;

// wt (K, C) = w (C, K) transposed.
std::vector<float> transpose_w(int64_t C, int64_t K, const float* w) {
  std::vector<float> wt(K * C);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t k = 0; k < K; ++k) wt[k * C + c] = w[c * K + k];
  return wt;
}

void check_dims(int64_t B, int64_t L, int64_t C, int64_t K) {
  PF_CHECK(B >= 1 && L >= 1 && C >= 1 && K >= 1, "conv1d_causal: bad shape B=", B, " L=", L,
           " C=", C, " K=", K);
}
}  // namespace

void conv1d_causal_fwd(int64_t B, int64_t L, int64_t C, int64_t K, const float* x, const float* w,
                       const float* bias, const float* state_in, float* y, float* state_out) {
  check_dims(B, L, C, K);
  const std::vector<float> wt = transpose_w(C, K, w);  // (K, C)
  // hist (B, K-1, C): the inputs before t = 0, as rows like x's, so every tap reads a row.
  // Copied first, which also makes state_out safe to alias state_in.
  std::vector<float> hist(B * (K - 1) * C, 0.0f);
  if (state_in)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j + 1 < K; ++j)
        for (int64_t c = 0; c < C; ++c)
          hist[(b * (K - 1) + j) * C + c] = state_in[(b * C + c) * K + 1 + j];
  const int64_t ntb = (L + kTimeBlock - 1) / kTimeBlock;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t tb = 0; tb < ntb; ++tb) {
      std::vector<const float*> rows(K);  // input row under each tap
      for (int64_t t = tb * kTimeBlock; t < std::min(L, (tb + 1) * kTimeBlock); ++t) {
        for (int64_t k = 0; k < K; ++k) {
          const int64_t p = t - (K - 1) + k;
          rows[k] = p >= 0 ? x + (b * L + p) * C : hist.data() + (b * (K - 1) + p + K - 1) * C;
        }
        float* yrow = y + (b * L + t) * C;
        for (int64_t c = 0; c < C; c += kLanes) {
          const int64_t nc = std::min(kLanes, C - c);
          v16 acc = bias ? load_n(bias + c, nc) : simd::splat(0.0f);
          for (int64_t k = 0; k < K; ++k)
            acc += load_n(&wt[k * C + c], nc) * load_n(rows[k] + c, nc);
          store_n(yrow + c, acc, nc);
        }
      }
    }
  if (state_out)
    // The last K entries of [state_in (K), x (L)]: x[L - K + j], or state_in[L + j] = hist.
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t j = 0; j < K; ++j) {
          const int64_t p = L - K + j;  // position in x; negative reaches into state_in
          state_out[(b * C + c) * K + j] =
              p >= 0 ? x[(b * L + p) * C + c] : hist[(b * (K - 1) + p + K - 1) * C + c];
        }
}

void conv1d_causal_bwd(int64_t B, int64_t L, int64_t C, int64_t K, const float* x, const float* w,
                       const float* dy, float* dx, float* dw, float* dbias) {
  check_dims(B, L, C, K);
  const std::vector<float> wt = transpose_w(C, K, w);  // (K, C)
  const int nthr = omp_get_max_threads();
  // Per-thread partials of dw (K, C) and dbias (C), summed in thread order afterwards.
  const int64_t stride = (K + 1) * C;
  std::vector<float> part(nthr * stride, 0.0f);
  const int64_t ntb = (L + kTimeBlock - 1) / kTimeBlock;
#pragma omp parallel num_threads(nthr)
  {
    float* dwt = part.data() + omp_get_thread_num() * stride;  // (K, C)
    float* db = dwt + K * C;                                   // (C)
    // Static: the task -> thread map, hence the partial sums, is fixed for a thread count.
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t tb = 0; tb < ntb; ++tb)
        for (int64_t t = tb * kTimeBlock; t < std::min(L, (tb + 1) * kTimeBlock); ++t) {
          const float* dyrow = dy + (b * L + t) * C;
          for (int64_t c = 0; c < C; c += kLanes) {
            const int64_t nc = std::min(kLanes, C - c);
            const v16 g = load_n(dyrow + c, nc);
            store_n(db + c, load_n(db + c, nc) + g, nc);
            // dw[k] += dy[t] * x[t - (K-1) + k]  (zero padding contributes nothing)
            for (int64_t k = std::max<int64_t>(0, K - 1 - t); k < K; ++k) {
              const float* xr = x + (b * L + t - (K - 1) + k) * C + c;
              store_n(dwt + k * C + c, load_n(dwt + k * C + c, nc) + g * load_n(xr, nc), nc);
            }
            if (!dx) continue;
            // dx[t] = sum_k w[k] * dy[t + (K-1) - k] over outputs inside the sequence.
            v16 acc = simd::splat(0.0f);
            for (int64_t k = std::max<int64_t>(0, t + K - L); k < K; ++k)
              acc += load_n(&wt[k * C + c], nc) * load_n(dy + (b * L + t + K - 1 - k) * C + c, nc);
            float* dxr = dx + (b * L + t) * C + c;
            store_n(dxr, load_n(dxr, nc) + acc, nc);
          }
        }
  }
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t k = 0; k < K; ++k) {
      float acc = 0.0f;
      for (int thr = 0; thr < nthr; ++thr) acc += part[thr * stride + k * C + c];
      if (dw) dw[c * K + k] += acc;
    }
    float acc = 0.0f;
    for (int thr = 0; thr < nthr; ++thr) acc += part[thr * stride + K * C + c];
    if (dbias) dbias[c] += acc;
  }
}

void conv1d_causal_step(int64_t B, int64_t C, int64_t K, const float* x, const float* w,
                        const float* bias, float* state, float* y, const int64_t* slots) {
  check_dims(B, 1, C, K);
  // Same summation order as the forward (bias, then taps oldest first).
#pragma omp parallel for schedule(static) if (B * C * K >= 16384)
  for (int64_t r = 0; r < B * C; ++r) {
    const int64_t b = r / C, c = r % C;
    float* st = state + ((slots ? slots[b] : b) * C + c) * K;  // (K) oldest first
    for (int64_t k = 0; k + 1 < K; ++k) st[k] = st[k + 1];     // K is tiny: no memmove call
    st[K - 1] = x[r];
    float acc = bias ? bias[c] : 0.0f;
    for (int64_t k = 0; k < K; ++k) acc += w[c * K + k] * st[k];
    y[r] = acc;
  }
}

}  // namespace pf::cpu
