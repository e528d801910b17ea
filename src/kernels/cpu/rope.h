// Rotary position embedding. Two conventions:
//  - Hugging Face / GPT-NeoX "rotate half" (default): the pair (x[i], x[i + hd/2]) is
//    rotated by pos * theta^(-2i/hd);
//  - torchscale RetNet "rotate every two": the pair (x[2i], x[2i+1]) is rotated by
//    pos * theta^(-linspace(0, 1, hd/2)[i]).
#pragma once
#include <cstdint>

namespace pf::cpu {

struct RopeStyle {
  float theta = 10000.0f;
  bool interleaved = false;  // pairs (2i, 2i+1) instead of (i, i + hd/2)
  bool linspace = false;     // exponents linspace(0, 1, hd/2) instead of 2i/hd
  int64_t rotary_dim = 0;    // rotate only the first rotary_dim dims of a head (0 = all)
};

// x, y: (B, T, H, hd) contiguous; token t has position pos0 + t. y may alias x.
void rope_fwd(int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0, const RopeStyle& style,
              const float* x, float* y);
// dx += rotate(dy, -angle). dx must not alias dy.
void rope_bwd(int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0, const RopeStyle& style,
              const float* dy, float* dx);

// x, y: (rows, H, hd); row r has position pos[r] (rows of different sequences in one
// batch). y may alias x.
void rope_fwd_rows(int64_t rows, int64_t H, int64_t hd, const int64_t* pos, const RopeStyle& style,
                   const float* x, float* y);

// Hugging Face convention with base theta.
inline void rope_fwd(int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0, float theta,
                     const float* x, float* y) {
  rope_fwd(B, T, H, hd, pos0, RopeStyle{theta, false, false}, x, y);
}
inline void rope_bwd(int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0, float theta,
                     const float* dy, float* dx) {
  rope_bwd(B, T, H, hd, pos0, RopeStyle{theta, false, false}, dy, dx);
}

}  // namespace pf::cpu
