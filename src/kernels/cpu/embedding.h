// Token embedding lookup.
#pragma once
#include <cstdint>

namespace pf::cpu {

// out: (n, dim) = W[ids[i]]; W: (vocab, dim). Throws on an id outside [0, vocab).
void embedding_fwd(int64_t n, int64_t vocab, int64_t dim, const int32_t* ids, const float* W,
                   float* out);
// dW[ids[i]] += dout[i]. Threads split the columns, so no two write the same element.
void embedding_bwd(int64_t n, int64_t dim, const int32_t* ids, const float* dout, float* dW);

}  // namespace pf::cpu
