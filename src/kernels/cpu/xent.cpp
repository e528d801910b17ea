#include "kernels/cpu/xent.h"

#include <cmath>
#include <limits>

#include "base/error.h"
#include "kernels/cpu/simd.h"

namespace pf::cpu {

namespace {
float row_lse(int64_t vocab, const float* x) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < vocab; ++j) mx = std::max(mx, x[j]);
  simd::v16 acc = simd::splat(0.0f);
  int64_t j = 0;
  for (; j + 16 <= vocab; j += 16) acc += simd::exp(simd::load(x + j) - mx);
  float s = simd::hsum(acc);
  for (; j < vocab; ++j) s += std::exp(x[j] - mx);
  return mx + std::log(s);
}
}  // namespace

double xent_fwd(int64_t rows, int64_t vocab, const float* logits, const int32_t* targets,
                float* lse, int64_t* count) {
  double total = 0.0;
  int64_t n = 0;
  for (int64_t r = 0; r < rows; ++r)
    PF_CHECK(targets[r] < vocab, "target token ", targets[r], " is outside the vocabulary (", vocab,
             ")");
#pragma omp parallel for schedule(static) reduction(+ : total, n)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = logits + r * vocab;
    lse[r] = row_lse(vocab, x);
    if (targets[r] >= 0) {
      total += static_cast<double>(lse[r] - x[targets[r]]);
      n += 1;
    }
  }
  if (count) *count = n;
  return total;
}

void xent_bwd(int64_t rows, int64_t vocab, const float* logits, const int32_t* targets,
              const float* lse, float scale, float* dlogits) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] < 0) continue;
    const float* x = logits + r * vocab;
    float* d = dlogits + r * vocab;
    const float l = lse[r];
    int64_t j = 0;
    for (; j + 16 <= vocab; j += 16)
      simd::store(d + j, simd::load(d + j) + scale * simd::exp(simd::load(x + j) - l));
    for (; j < vocab; ++j) d[j] += scale * std::exp(x[j] - l);
    d[targets[r]] -= scale;
  }
}

void log_softmax(int64_t rows, int64_t vocab, const float* logits, float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float l = row_lse(vocab, logits + r * vocab);
    for (int64_t j = 0; j < vocab; ++j) out[r * vocab + j] = logits[r * vocab + j] - l;
  }
}

}  // namespace pf::cpu
