#include "kernels/cpu/embedding.h"

#include <omp.h>

#include <cstring>

#include "base/error.h"

namespace pf::cpu {

void embedding_fwd(int64_t n, int64_t vocab, int64_t dim, const int32_t* ids, const float* W,
                   float* out) {
  for (int64_t i = 0; i < n; ++i)
    PF_CHECK(ids[i] >= 0 && ids[i] < vocab, "token id ", ids[i], " is outside the vocabulary [0, ",
             vocab, ")");
#pragma omp parallel for schedule(static) if (n * dim > 65536)
  for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * dim, W + ids[i] * dim, dim * sizeof(float));
}

void embedding_bwd(int64_t n, int64_t dim, const int32_t* ids, const float* dout, float* dW) {
#pragma omp parallel
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t lo = dim * t / nt, hi = dim * (t + 1) / nt;
    for (int64_t i = 0; i < n; ++i) {
      float* dst = dW + ids[i] * dim;
      const float* src = dout + i * dim;
      for (int64_t j = lo; j < hi; ++j) dst[j] += src[j];
    }
  }
}

}  // namespace pf::cpu
