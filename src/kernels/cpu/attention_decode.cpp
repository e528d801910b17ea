#include "kernels/cpu/attention_decode.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/error.h"

namespace pf::cpu {

void attention_decode(const AttnDecodeShape& s, const float* q, const float* const* k,
                      const float* const* v, const int64_t* tk, float* out) {
  PF_CHECK(s.KV > 0 && s.H % s.KV == 0, "attention_decode: ", s.H, " heads are not a multiple of ",
           s.KV, " key/value heads");
  const int64_t group = s.H / s.KV, hd = s.hd, kvs = s.KV * hd;
#pragma omp parallel
  {
    std::vector<float> p;  // (tk) scores, then weights
#pragma omp for collapse(2) schedule(static)
    for (int64_t r = 0; r < s.rows; ++r)
      for (int64_t h = 0; h < s.H; ++h) {
        const int64_t n = tk[r];
        const float* qh = q + (r * s.H + h) * hd;
        const float* kr = k[r] + (h / group) * hd;
        const float* vr = v[r] + (h / group) * hd;
        float* o = out + (r * s.H + h) * hd;
        p.resize(static_cast<size_t>(std::max<int64_t>(n, 1)));
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          const float* kj = kr + j * kvs;
          float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
          for (int64_t d = 0; d < hd; ++d) acc += qh[d] * kj[d];
          p[j] = acc * s.scale;
          mx = std::max(mx, p[j]);
        }
        float z = 0.0f;
        for (int64_t j = 0; j < n; ++j) z += (p[j] = std::exp(p[j] - mx));
        const float inv = n > 0 ? 1.0f / z : 0.0f;
        std::fill(o, o + hd, 0.0f);
        for (int64_t j = 0; j < n; ++j) {
          const float* vj = vr + j * kvs;
          const float w = p[j] * inv;
#pragma omp simd
          for (int64_t d = 0; d < hd; ++d) o[d] += w * vj[d];
        }
      }
  }
}

}  // namespace pf::cpu
