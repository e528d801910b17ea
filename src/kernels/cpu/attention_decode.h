// Causal attention for decode rows of different sequences in one call: row r is one query
// token that attends to the first tk[r] keys of its own KV cache. One parallel region over
// (row, head) pairs, instead of a tiled attention call per sequence.
#pragma once
#include <cstdint>

namespace pf::cpu {

struct AttnDecodeShape {
  int64_t rows = 1, H = 1, KV = 1, hd = 1;  // H % KV == 0
  float scale = 1.0f;                       // usually 1/sqrt(hd)
};

// q, out: (rows, H, hd); k[r], v[r]: row r's cache (>= tk[r], KV, hd) contiguous.
void attention_decode(const AttnDecodeShape& s, const float* q, const float* const* k,
                      const float* const* v, const int64_t* tk, float* out);

}  // namespace pf::cpu
