// Rotary position embedding, Hugging Face rotate-half convention: the pair
// (x[i], x[i + hd/2]) is rotated by angle pos * theta^(-2i/hd).
#pragma once
#include <cstdint>

namespace pf::cpu {

// x, y: (B, T, H, hd) contiguous; token t has position pos0 + t. y may alias x.
void rope_fwd(int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0, float theta,
              const float* x, float* y);
// dx += rotate(dy, -angle). dx must not alias dy.
void rope_bwd(int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0, float theta,
              const float* dy, float* dx);

}  // namespace pf::cpu
