// Mamba-2 state-space duality (SSD), chunked. Per head, with delta = softplus(dt + dt_bias)
// and A = -exp(A_log):
//   S_t = exp(delta_t * A) * S_{t-1} + delta_t * x_t (outer) B_t     (S: P x N)
//   y_t = S_t C_t + Dskip * x_t
// Within a chunk of Q steps the output is a masked (Q, Q) product, attention-like, run on
// cpu::gemm; states are passed between chunks. Scratch is O(Q^2 + H P N) per thread in the
// forward; the backward also holds two (P, N) states per (batch, chunk, head), in a buffer
// the calling thread keeps between calls. Memory is linear in L, never (L, L).
// On 2 cores chunk 64..128 is fastest (chunk 256 costs ~15% more in the forward).
#pragma once
#include <cstdint>

namespace pf::cpu {

// Heads H with head dim P; G groups of B/C (H % G == 0; head h reads group h / (H / G));
// state size N.
struct SsdShape {
  int64_t B = 1, L = 1, H = 1, P = 64, G = 1, N = 128;
};

// x: (B, L, H, P); dt: (B, L, H) before softplus; dt_bias: (H) or null; A_log: (H);
// Bm, Cm: (B, L, G, N); Dskip: (H) or null; h0: (B, H, P, N) initial state or null (zeros).
// y: (B, L, H, P); h_last: (B, H, P, N) final state or null, and may be h0 itself (the
// state is then advanced in place). The result does not depend on `chunk` beyond f32
// rounding (chunk >= 1; values above L act as L).
void ssd_fwd(const SsdShape& s, int64_t chunk, const float* x, const float* dt,
             const float* dt_bias, const float* A_log, const float* Bm, const float* Cm,
             const float* Dskip, const float* h0, float* y, float* h_last);

// Gradients of ssd_fwd with h0 = 0 given dy: (B, L, H, P). Accumulates (+=) into the
// gradient buffers (same layouts as their inputs); any of them may be null.
void ssd_bwd(const SsdShape& s, int64_t chunk, const float* x, const float* dt,
             const float* dt_bias, const float* A_log, const float* Bm, const float* Cm,
             const float* Dskip, const float* dy, float* dx, float* ddt, float* ddt_bias,
             float* dA_log, float* dBm, float* dCm, float* dDskip);

// One decoding step for each of s.B rows (s.L is ignored): x: (B, H, P); dt: (B, H);
// Bt, Ct: (B, G, N); state: (S, H, P, N) updated in place, row b at slot slots[b] (slot b
// when slots is null); y: (B, H, P).
void ssd_step(const SsdShape& s, const float* x, const float* dt, const float* dt_bias,
              const float* A_log, const float* Bt, const float* Ct, const float* Dskip,
              float* state, float* y, const int64_t* slots = nullptr);

// Reference: the recurrence above run step by step in double precision (same arguments
// as ssd_fwd without the chunk).
void ssd_ref(const SsdShape& s, const float* x, const float* dt, const float* dt_bias,
             const float* A_log, const float* Bm, const float* Cm, const float* Dskip,
             const float* h0, float* y, float* h_last);

}  // namespace pf::cpu
